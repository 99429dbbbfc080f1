/*
 * A tiny HTTP server for the node tests' own image (e2e/stack/local-images.ts packs it with
 * `gcc -static`, so the image needs no base and no registry): it answers every GET with
 * "ok <path>", logs one line per request to stdout (what `kubectl logs` shows), and exits 0
 * on SIGTERM. It writes nothing to disk, so it runs with a read-only root file system.
 * Usage: testserver [PORT]   (8080 unless given)
 */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

/* Reads the request line ("GET /path HTTP/1.1") and answers with the path. */
static void serve(int conn) {
  char req[1024];
  ssize_t n = read(conn, req, sizeof req - 1);
  if (n <= 0) return;
  req[n] = '\0';
  char method[16] = "", path[512] = "";
  if (sscanf(req, "%15s %511s", method, path) != 2) return;
  printf("testserver: %s %s uid=%d\n", method, path, (int)getuid());
  fflush(stdout);
  char body[600], resp[800];
  int blen = snprintf(body, sizeof body, "ok %s\n", path);
  int rlen = snprintf(resp, sizeof resp,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                      "Connection: close\r\n\r\n%s",
                      blen, body);
  if (write(conn, resp, (size_t)rlen) < 0) perror("testserver: write");
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8080;
  signal(SIGTERM, on_term);
  signal(SIGPIPE, SIG_IGN);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) {
    perror("testserver: listen");
    return 1;
  }
  printf("testserver: listening on port %d\n", port);
  fflush(stdout);
  for (;;) {
    int conn = accept(fd, NULL, NULL);
    if (conn < 0) continue;
    serve(conn);
    close(conn);
  }
}
