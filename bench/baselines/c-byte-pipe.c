/*
 * Reference (h) of bench/python: about the least a hop costs, whatever its language. Each client
 * connection gets a thread and its own connection to berth's Python container, and bytes are copied
 * both ways with blocking reads and writes, unparsed: no event loop, no polling, no runtime. (e), the
 * bare Node byte pipe, does the same from Node's event loop. What (h) costs above the container alone
 * is the second process in the request's chain itself, which a gateway of any kind, in any language,
 * pays too, unless it spins on a CPU to save the wake-ups (docs/python-speed.md).
 *
 * usage: c-byte-pipe <port> <container port>   (both on 127.0.0.1)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static int upstream_port;

struct direction {
  int from, to;
};

/* Copies until `from` ends or either side fails, then passes the end on. */
static void *copy(void *arg) {
  struct direction *d = arg;
  char buf[65536];
  ssize_t n;
  while ((n = read(d->from, buf, sizeof buf)) > 0) {
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(d->to, buf + done, (size_t)(n - done));
      if (w <= 0) goto out;
      done += w;
    }
  }
out:
  shutdown(d->to, SHUT_WR);
  shutdown(d->from, SHUT_RD);
  return NULL;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void *serve(void *arg) {
  int client = (int)(long)arg, one = 1;
  setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int upstream = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback(upstream_port);
  if (upstream < 0 || connect(upstream, (struct sockaddr *)&a, sizeof a) != 0) {
    close(client);
    if (upstream >= 0) close(upstream);
    return NULL;
  }
  setsockopt(upstream, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct direction up = {client, upstream}, down = {upstream, client};
  pthread_t answers;
  if (pthread_create(&answers, NULL, copy, &down) == 0) {
    copy(&up);
    pthread_join(answers, NULL);
  }
  close(client);
  close(upstream);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: c-byte-pipe <port> <container port>\n");
    return 2;
  }
  upstream_port = atoi(argv[2]);
  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(atoi(argv[1]));
  if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 1024) != 0) {
    perror("c-byte-pipe");
    return 1;
  }
  for (;;) {
    int client = accept(listener, NULL, NULL);
    if (client < 0) continue;
    pthread_t t;
    if (pthread_create(&t, NULL, serve, (void *)(long)client) == 0) pthread_detach(t);
    else close(client);
  }
}
