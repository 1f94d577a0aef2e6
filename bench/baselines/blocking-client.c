/*
 * bench/python's second load generator: one keep-alive connection, one request at a time, blocking
 * reads — the way an SDK client invokes an endpoint — timing each request with CLOCK_MONOTONIC.
 * wrk (the first) drives the connection from an epoll loop; on this kind of machine the two disagree
 * about the tail of a Node hop (see docs/python-speed.md), so bench/python reports both at c=1.
 *
 * usage: blocking-client <port> <path> <seconds> <body> [rate]
 * prints: n=<requests> p50=<µs> p90=<µs> p99=<µs> p999=<µs> max=<µs> p99_settled=<µs>
 *         over1ms=<requests> over2ms=<requests>
 * where p99_settled is the p99 of the requests sent after the run's first 0.5 s: a server that has
 * been idle may start slower than it goes on (docs/python-speed.md, "What the tail is made of").
 * over1ms and over2ms count the requests that took longer: at one connection wrk's p99 follows how
 * many such stalls a run had more than how long a typical request took, and the two counts tell a
 * stall of a scheduler tick (1-2 ms) from a longer one (docs/python-speed.md).
 *
 * With a rate (requests per second), requests are paced instead of sent back to back: request i is
 * due at i / rate seconds after the start, and the client sleeps until then. A request that could not
 * be sent when due because the answer before it came late is timed from when it was due, as a
 * client with a schedule would see it (wrk2's correction for coordinated omission); one sent late
 * only because this client overslept (or was preempted) is timed from when it was sent, and the
 * schedule moves with it, so that the requests after it do not count the client's lateness either.
 * Every server then faces the same offered load, so their tails compare on equal footing: wrk's own
 * correction takes its interval from each server's throughput, and holds a faster server to a
 * shorter one.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* A system call failed: its errno says why. */
static void fail(const char *what) {
  perror(what);
  exit(1);
}

/* Anything else: errno would be stale, so only the message. */
static void refuse(const char *message) {
  fprintf(stderr, "blocking-client: %s\n", message);
  exit(1);
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6) {
    fprintf(stderr, "usage: %s <port> <path> <seconds> <body> [rate]\n", argv[0]);
    return 2;
  }
  const char *port = argv[1], *path = argv[2], *body = argv[4];
  double seconds = atof(argv[3]);
  double rate = argc == 6 ? atof(argv[5]) : 0;
  if (argc == 6 && !(rate > 0)) refuse("the rate must be a positive number of requests per second");
  /* Wake-ups when due, not up to the default 50 µs later: the lateness would count against no one. */
  if (rate > 0) prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  char request[8192];
  int length = snprintf(request, sizeof request,
                        "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                        path, port, strlen(body), body);
  if (length <= 0 || length >= (int)sizeof request) refuse("the request does not fit in 8 KB");

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) fail("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  size_t capacity = 4000000, n = 0;
  double *latency = malloc(capacity * sizeof *latency);
  static char answer[1 << 16];
  double begin = now_us(), end = begin + seconds * 1e6;
  size_t settled = 0; /* the first request sent after the first 0.5 s */
  double answered = begin; /* when the last answer was complete */
  while (n < capacity) {
    double start = now_us();
    if (rate > 0) {
      double due = begin + (double)n * 1e6 / rate;
      if (answered > due) {
        start = due; /* the server's lateness delayed this request: it counts */
      } else {
        if (start < due) {
          time_t whole = (time_t)(due / 1e6);
          long nanos = (long)((due - (double)whole * 1e6) * 1e3);
          struct timespec until = {.tv_sec = whole, .tv_nsec = nanos < 999999999 ? nanos : 999999999};
          int slept;
          while ((slept = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL)) == EINTR) {
          }
          if (slept != 0) refuse("clock_nanosleep failed");
          start = now_us();
        }
        /* Sent late through no fault of the server (this client overslept, or was preempted): the
           schedule moves with it, or the requests after it would count the client's lateness. */
        if (start > due) begin += start - due;
      }
    }
    if (start > end) break;
    if (settled == 0 && start - begin >= 5e5) settled = n;
    if (write(fd, request, (size_t)length) != length) fail("write");
    size_t got = 0, head = 0;
    long expected = -1;
    for (;;) {
      if (got == sizeof answer - 1) refuse("the answer is larger than 64 KB");
      ssize_t k = read(fd, answer + got, sizeof answer - 1 - got);
      if (k < 0) fail("read");
      if (k == 0) refuse("the server closed the connection before its answer was complete");
      got += (size_t)k;
      answer[got] = '\0';
      if (expected < 0) {
        char *blank = memmem(answer, got, "\r\n\r\n", 4);
        if (blank == NULL) continue;
        head = (size_t)(blank - answer) + 4;
        if (strncmp(answer + 9, "200", 3) != 0) {
          fprintf(stderr, "answer was not 200: %.*s\n", (int)head, answer);
          return 1;
        }
        char *field = strcasestr(answer, "\r\ncontent-length:");
        if (field == NULL || field > blank) refuse("the answer has no Content-Length");
        expected = atol(field + 17);
      }
      if (got >= head + (size_t)expected) break;
    }
    answered = now_us();
    latency[n++] = answered - start;
  }
  if (n == 0) refuse("no request completed");
  if (settled == 0) refuse("the run is too short to leave out its first 0.5 s");
  size_t m = n - settled;
  double *later = malloc(m * sizeof *later);
  memcpy(later, latency + settled, m * sizeof *later);
  qsort(later, m, sizeof *later, by_value);
  qsort(latency, n, sizeof *latency, by_value);
  size_t over1 = 0, over2 = 0;
  for (size_t i = 0; i < n; i++) {
    over1 += latency[i] > 1000;
    over2 += latency[i] > 2000;
  }
  printf("n=%zu p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f p99_settled=%.0f over1ms=%zu over2ms=%zu\n", n, latency[n / 2],
         latency[n * 9 / 10], latency[n * 99 / 100], latency[n * 999 / 1000], latency[n - 1], later[m * 99 / 100], over1, over2);
  return 0;
}
