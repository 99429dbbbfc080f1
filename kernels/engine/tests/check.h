// Minimal assertions for the engine's CTest programs: print what failed and exit non-zero.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

#define CHECK_OK(expr)                                                          \
  do {                                                                          \
    const std::string check_err_ = (expr);                                      \
    if (!check_err_.empty()) {                                                  \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, \
                   check_err_.c_str());                                         \
      std::exit(1);                                                             \
    }                                                                           \
  } while (0)

inline std::string temp_dir(const char* name) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base ? base : "/tmp") + "/covenant-engine-" + name + "-" +
                    std::to_string(::getpid());
  std::system(("mkdir -p '" + dir + "'").c_str());
  return dir;
}
