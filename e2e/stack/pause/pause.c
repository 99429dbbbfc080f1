/*
 * The sandbox ("pause") process of the test nodes' pods, built with `gcc -static` into the
 * image containerd's CRI starts first in every pod (e2e/stack/local-images.ts packs it). It
 * holds the pod's namespaces open, and as PID 1 of a pod that shares its process namespace it
 * reaps orphans. It exits on SIGINT or SIGTERM, which the runtime sends to stop the sandbox.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

/* Collects every exited child, so none is left a zombie. */
static void on_child(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  if (getpid() != 1) fprintf(stderr, "pause: not PID 1; reaping only its own children\n");
  struct sigaction stop = {.sa_handler = on_stop};
  struct sigaction child = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
  if (sigaction(SIGINT, &stop, NULL) < 0 || sigaction(SIGTERM, &stop, NULL) < 0 ||
      sigaction(SIGCHLD, &child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
