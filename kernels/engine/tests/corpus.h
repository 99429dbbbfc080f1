// Builds a text corpus at run time from documentation that ships with the operating system.
#pragma once
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

inline bool looks_like_text(const std::string& s) {
  if (s.empty()) return false;
  size_t printable = 0;
  for (unsigned char c : s) printable += (c >= 32 && c < 127) || c == '\n' || c == '\t';
  return printable >= s.size() * 98 / 100;
}

inline void collect_files(const std::string& dir, int depth, std::vector<std::string>* out) {
  if (depth > 3) return;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      collect_files(path, depth + 1, out);
    } else if (S_ISREG(st.st_mode) && st.st_size > 200 && st.st_size < 400000 && name.size() > 0 &&
               name.find(".gz") == std::string::npos) {
      out->push_back(path);
    }
  }
  closedir(d);
}

// Concatenated English documentation (copyright notices, READMEs, licences), in a stable
// order, up to max_bytes. Each document is a vector element.
inline std::vector<std::string> system_documents(size_t max_bytes) {
  std::vector<std::string> files;
  collect_files("/usr/share/doc", 0, &files);
  collect_files("/usr/share/common-licenses", 0, &files);
  std::sort(files.begin(), files.end());
  std::vector<std::string> docs;
  size_t total = 0;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    if (!looks_like_text(s)) continue;
    total += s.size();
    docs.push_back(std::move(s));
    if (total >= max_bytes) break;
  }
  return docs;
}
