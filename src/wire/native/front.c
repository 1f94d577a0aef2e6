#define _GNU_SOURCE
// berth's native invocation front: the invocation fast path (front.ts) in C, each client connection
// on its own thread with blocking reads and writes, forwarding plain InvokeEndpoint requests of the
// endpoints the router publishes here straight to a container over a keep-alive connection.
//
// Why: at one connection every request crosses the gateway twice, and what the gateway costs there is
// its CPU work per crossing, mostly spent on cold caches when requests come a few milliseconds apart.
// berth's Node gateway spent 250-400 µs of CPU per request at 287 requests a second (its JavaScript,
// Node's streams and promises, each run about three times slower than when warm), a bare C byte pipe
// 80-100 µs (docs/python-speed.md). This file is that pipe plus what an invocation needs: the plain
// request's head parsed, the variant and instance picked, the container's answer parsed and framed.
//
// What it does not do is left to JavaScript, so that every rule and every error message lives in one
// place: a request that is not a plain invocation hands its connection to Node's `http` server (as
// front.ts does); a plain invocation of an endpoint not published here, with a header the router must
// judge, or whose container call failed or answered other than 2xx, is answered by `answerInvocation`
// (with the container's answer or the failure, so a delivered request is never sent twice).
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEAD 16384            /* Node's default --max-http-header-size: longer heads go to `http` */
#define MAX_ANSWER_HEAD 65536     /* the container client's bound on an answer's head */
#define MAX_NAMES 32
#define MAX_IDLE 64               /* idle connections kept per container */
#define CONNECT_TIMEOUT_MS 2000
/** Calls in flight to one container, as the container client's 128 connections; more go to JavaScript. */
#define MAX_INFLIGHT 128
/** Client connections served by threads of their own; more are handed to Node's `http` server. */
#define MAX_CONNS 4096

/* ------------------------------------------------------------------------------------------------ */
/* Growable byte buffers                                                                            */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) return -1;
  b->p = p;
  b->cap = cap;
  return 0;
}

static int buf_add(buf_t *b, const void *p, size_t n) {
  if (n == 0) return 0;
  if (buf_reserve(b, n)) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

static int buf_str(buf_t *b, const char *s) { return buf_add(b, s, strlen(s)); }

static void buf_consume(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static const char *find(const char *p, size_t n, const char *needle, size_t m) {
  if (n < m) return NULL;
  for (size_t i = 0; i + m <= n; i++)
    if (p[i] == needle[0] && memcmp(p + i, needle, m) == 0) return p + i;
  return NULL;
}

static int64_t now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------------------------------ */
/* Routes, containers and metric slots, as the router publishes them                                */

/** One container's keep-alive connections; lives as long as the process (a few dozen bytes). */
typedef struct pool {
  struct pool *next;
  char *id; /* the instance's id */
  char host[64];
  int port;
  pthread_mutex_t mu;
  int idle[MAX_IDLE];
  int64_t idle_since[MAX_IDLE];
  int nidle;
  atomic_int inflight;
  atomic_int retired;
} pool_t;

typedef struct {
  atomic_ullong invocations, model_sum, model_count, overhead_sum, overhead_count;
} slot_t;

typedef struct {
  char *name;
  double weight;
  int slot;
  int ninst;
  pool_t **inst;
} variant_t;

typedef struct endpoint {
  struct endpoint *next;
  atomic_int refs;
  char *name;
  int nvariants;
  variant_t *variants;
} endpoint_t;

#define BUCKETS 1024

/** The headers the front itself reads, in HEADER_NAMES' order. */
enum { H_CONTENT_LENGTH, H_CONNECTION, H_CONTENT_TYPE, H_ACCEPT, H_CUSTOM_ATTRIBUTES, H_TARGET_VARIANT, H_INFERENCE_ID, H_TARGET_MODEL, H_TARGET_HOSTNAME, H_COUNT };
static const char *const HEADER_NAMES[H_COUNT] = {
    "content-length", "connection", "content-type", "accept", "x-amzn-sagemaker-custom-attributes", "x-amzn-sagemaker-target-variant",
    "x-amzn-sagemaker-inference-id", "x-amzn-sagemaker-target-model", "x-amzn-sagemaker-target-container-hostname",
};

/** One listening front (a process may run several: tests start berth more than once). */
typedef struct front {
  int listen_fd;
  int port;
  atomic_int closing;
  int keep_alive_ms;
  long long max_payload;
  int invocation_timeout_ms;
  long long max_response;
  char *names[MAX_NAMES];
  size_t name_len[MAX_NAMES];
  int nnames;
  /** Where each header the front itself reads is in `names` (-1: JavaScript did not list it). */
  int at[H_COUNT];
  char prefix[32];
  atomic_ullong counter;
  napi_threadsafe_function handoff, delegate;
  pthread_rwlock_t routes_mu;
  endpoint_t *routes[BUCKETS];
  pthread_mutex_t conns_mu;
  struct conn *conns;
  atomic_int nconns;
  /** Connections on their way to JavaScript (handed off, not yet taken over): close waits for them too. */
  atomic_int handoffs;
} front_t;

/** What the process's fronts share: containers (instance ids are unique) and metric slots. */
static struct {
  pthread_mutex_t pools_mu;
  pool_t *pools;
  pthread_mutex_t slots_mu;
  slot_t **slots;
  int nslots;
} G;

static unsigned hash(const char *s) {
  unsigned h = 5381;
  while (*s) h = h * 33 + (unsigned char)*s++;
  return h % BUCKETS;
}

static void endpoint_unref(endpoint_t *e) {
  if (!e || atomic_fetch_sub(&e->refs, 1) != 1) return;
  for (int i = 0; i < e->nvariants; i++) {
    free(e->variants[i].name);
    free(e->variants[i].inst);
  }
  free(e->variants);
  free(e->name);
  free(e);
}

static endpoint_t *endpoint_get(front_t *F, const char *name) {
  pthread_rwlock_rdlock(&F->routes_mu);
  endpoint_t *e = F->routes[hash(name)];
  while (e && strcmp(e->name, name) != 0) e = e->next;
  if (e) atomic_fetch_add(&e->refs, 1);
  pthread_rwlock_unlock(&F->routes_mu);
  return e;
}

static pool_t *pool_for(const char *id, const char *host, int port) {
  pthread_mutex_lock(&G.pools_mu);
  pool_t *p = G.pools;
  while (p && strcmp(p->id, id) != 0) p = p->next;
  if (!p) {
    p = calloc(1, sizeof *p);
    p->id = strdup(id);
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    pthread_mutex_init(&p->mu, NULL);
    p->next = G.pools;
    G.pools = p;
  }
  atomic_store(&p->retired, 0);
  pthread_mutex_unlock(&G.pools_mu);
  return p;
}

static pool_t *pool_find(const char *id) {
  pthread_mutex_lock(&G.pools_mu);
  pool_t *p = G.pools;
  while (p && strcmp(p->id, id) != 0) p = p->next;
  pthread_mutex_unlock(&G.pools_mu);
  return p;
}

/** An idle connection is closed after this long, as the container client closes its own. */
#define IDLE_TIMEOUT_US (60 * 1000000LL)

/**
 * An idle connection that can take a call, or -1. One the container closed while it was idle (its
 * own keep-alive timeout), or that has bytes nobody asked for, is dropped here, as the container
 * client drops it when its socket ends: sent a call, it would fail it with `closed`.
 */
static int pool_take(pool_t *p) {
  int64_t now = now_us();
  for (;;) {
    pthread_mutex_lock(&p->mu);
    int fd = -1;
    int64_t since = 0;
    if (p->nidle > 0) {
      fd = p->idle[--p->nidle];
      since = p->idle_since[p->nidle];
    }
    pthread_mutex_unlock(&p->mu);
    if (fd < 0) return -1;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && now - since < IDLE_TIMEOUT_US) return fd;
    close(fd);
  }
}

static void pool_give(pool_t *p, int fd) {
  pthread_mutex_lock(&p->mu);
  if (!atomic_load(&p->retired) && p->nidle < MAX_IDLE) {
    p->idle_since[p->nidle] = now_us();
    p->idle[p->nidle++] = fd;
    fd = -1;
  }
  pthread_mutex_unlock(&p->mu);
  if (fd >= 0) close(fd);
}

static void pool_retire(pool_t *p) {
  pthread_mutex_lock(&p->mu);
  atomic_store(&p->retired, 1);
  for (int i = 0; i < p->nidle; i++) close(p->idle[i]);
  p->nidle = 0;
  pthread_mutex_unlock(&p->mu);
}

static slot_t *slot_get(int i) {
  pthread_mutex_lock(&G.slots_mu);
  if (i >= G.nslots) {
    int n = G.nslots ? G.nslots : 64;
    while (n <= i) n *= 2;
    slot_t **s = realloc(G.slots, sizeof *s * n);
    memset(s + G.nslots, 0, sizeof *s * (n - G.nslots));
    G.slots = s;
    G.nslots = n;
  }
  if (!G.slots[i]) G.slots[i] = calloc(1, sizeof(slot_t));
  slot_t *s = G.slots[i];
  pthread_mutex_unlock(&G.slots_mu);
  return s;
}

/* ------------------------------------------------------------------------------------------------ */
/* Client connections                                                                               */

typedef struct conn {
  struct conn *next, *prev;
  struct front *f;
  int fd;
  atomic_int busy;
  buf_t in;
} conn_t;

/** A request: the head's known headers (value spans in `in`), its endpoint and body. */
typedef struct {
  char endpoint[256];
  size_t head_len;
  long long body_len;
  const char *value[MAX_NAMES];
  size_t value_len[MAX_NAMES];
} request_t;

/** Takes the connection off the front's list (close no longer sees it), then frees it. */
static void conn_forget(conn_t *c) {
  front_t *F = c->f;
  pthread_mutex_lock(&F->conns_mu);
  if (c->prev) c->prev->next = c->next;
  else F->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  pthread_mutex_unlock(&F->conns_mu);
  atomic_fetch_sub(&F->nconns, 1);
  buf_free(&c->in);
  free(c);
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/** Reads more into `b`; waits at most `timeout_ms` (-1: forever). >0 bytes, 0 end, -1 error, -2 timeout. */
static ssize_t read_more(int fd, buf_t *b, int timeout_ms) {
  if (buf_reserve(b, 16384)) return -1;
  for (;;) {
    if (timeout_ms >= 0) {
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      int r = poll(&pfd, 1, timeout_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return -2;
      if (r < 0) return -1;
    }
    ssize_t n = read(fd, b->p + b->len, b->cap - b->len);
    if (n < 0 && errno == EINTR) continue;
    if (n > 0) b->len += (size_t)n;
    return n;
  }
}

/* Handing a connection to JavaScript ------------------------------------------------------------- */

typedef struct {
  front_t *f;
  int fd;
  char *bytes;
  size_t len;
} handoff_t;

static void handoff_js(napi_env env, napi_value fn, void *ctx, void *data) {
  (void)ctx;
  handoff_t *h = data;
  if (env) {
    napi_value argv[2], undef;
    napi_create_int32(env, h->fd, &argv[0]);
    if (h->len) napi_create_buffer_copy(env, h->len, h->bytes, NULL, &argv[1]);
    else napi_get_undefined(env, &argv[1]);
    napi_get_undefined(env, &undef);
    if (napi_call_function(env, undef, fn, 2, argv, NULL) != napi_ok) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
    }
  } else {
    close(h->fd);
  }
  atomic_fetch_sub(&h->f->handoffs, 1);
  free(h->bytes);
  free(h);
}

/**
 * From here on connection `fd` is Node's `http` server's, starting with bytes[0..len) (copied). Until
 * JavaScript has taken it, close() counts it among the front's connections.
 */
static void hand_off(front_t *F, int fd, const char *bytes, size_t len) {
  handoff_t *h = malloc(sizeof *h);
  h->f = F;
  h->fd = fd;
  h->len = len;
  h->bytes = len ? malloc(len) : NULL;
  if (len) memcpy(h->bytes, bytes, len);
  atomic_fetch_add(&F->handoffs, 1);
  if (napi_call_threadsafe_function(F->handoff, h, napi_tsfn_blocking) != napi_ok) {
    atomic_fetch_sub(&F->handoffs, 1);
    close(h->fd);
    free(h->bytes);
    free(h);
  }
}

/* Asking JavaScript for an answer ---------------------------------------------------------------- */

typedef struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  char *answer;
  size_t answer_len;
  /* the request */
  const request_t *req;
  const conn_t *conn;
  const char *request_id;
  /* what the container said, when the call was made: kind "answer" or a failure */
  const char *kind;
  const char *detail;
  int status;
  const char *variant;
  const char *instance;
  const char *answer_body;
  size_t answer_body_len;
  double model_ms;
} ask_t;

static napi_value str(napi_env env, const char *s, size_t n) {
  napi_value v;
  napi_create_string_latin1(env, s, n, &v);
  return v;
}

static void ask_finish(ask_t *a, char *answer, size_t len) {
  pthread_mutex_lock(&a->mu);
  a->answer = answer;
  a->answer_len = len;
  a->done = 1;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

static void delegate_js(napi_env env, napi_value fn, void *ctx, void *data) {
  (void)ctx;
  ask_t *a = data;
  if (!env) {
    ask_finish(a, NULL, 0);
    return;
  }
  const request_t *r = a->req;
  front_t *F = a->conn->f;
  napi_value headers, argv[5], undef, ticket;
  napi_create_object(env, &headers);
  for (int i = 0; i < F->nnames; i++)
    if (r->value[i]) napi_set_named_property(env, headers, F->names[i], str(env, r->value[i], r->value_len[i]));
  napi_create_external(env, a, NULL, NULL, &ticket);
  argv[0] = ticket;
  argv[1] = headers;
  argv[2] = str(env, r->endpoint, strlen(r->endpoint));
  napi_create_buffer_copy(env, (size_t)r->body_len, a->conn->in.p + r->head_len, NULL, &argv[3]);
  argv[4] = str(env, a->request_id, strlen(a->request_id));
  napi_value outcome;
  if (a->kind) {
    napi_create_object(env, &outcome);
    napi_set_named_property(env, outcome, "kind", str(env, a->kind, strlen(a->kind)));
    napi_set_named_property(env, outcome, "variant", str(env, a->variant, strlen(a->variant)));
    napi_set_named_property(env, outcome, "instance", str(env, a->instance, strlen(a->instance)));
    napi_value v;
    napi_create_double(env, a->model_ms, &v);
    napi_set_named_property(env, outcome, "modelMs", v);
    if (a->status) {
      napi_create_int32(env, a->status, &v);
      napi_set_named_property(env, outcome, "status", v);
    }
    if (a->detail) napi_set_named_property(env, outcome, "detail", str(env, a->detail, strlen(a->detail)));
    if (a->answer_body) {
      napi_create_buffer_copy(env, a->answer_body_len, a->answer_body, NULL, &v);
      napi_set_named_property(env, outcome, "body", v);
    }
  } else {
    napi_get_undefined(env, &outcome);
  }
  napi_value args[6] = {argv[0], argv[1], argv[2], argv[3], argv[4], outcome};
  napi_get_undefined(env, &undef);
  if (napi_call_function(env, undef, fn, 6, args, NULL) != napi_ok) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    ask_finish(a, NULL, 0);
  }
}

/** JavaScript's answer (already a whole HTTP response), or NULL: drop the connection. */
static char *ask(ask_t *a, size_t *len) {
  front_t *F = a->conn->f;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->cv, NULL);
  a->done = 0;
  if (napi_call_threadsafe_function(F->delegate, a, napi_tsfn_blocking) != napi_ok) return NULL;
  pthread_mutex_lock(&a->mu);
  while (!a->done) pthread_cond_wait(&a->cv, &a->mu);
  pthread_mutex_unlock(&a->mu);
  pthread_cond_destroy(&a->cv);
  pthread_mutex_destroy(&a->mu);
  *len = a->answer_len;
  return a->answer;
}

/* The plain invocation ---------------------------------------------------------------------------- */

static int tchar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/** Index in F->names of the header named p[0..n) (any case), or -1. */
static int known(front_t *F, const char *p, size_t n) {
  for (int i = 0; i < F->nnames; i++)
    if (F->name_len[i] == n && strncasecmp(F->names[i], p, n) == 0) return i;
  return -1;
}

/** Index in F->names of `name` (lower case), or -1: used once, at start; requests use F->at. */
static int name_index(front_t *F, const char *name) {
  for (int i = 0; i < F->nnames; i++)
    if (strcmp(F->names[i], name) == 0) return i;
  return -1;
}

/**
 * Fills `r` if head[0..end) is a plain InvokeEndpoint, the rules of front.ts's plainInvocation:
 * anything unusual (a byte outside tab and visible ASCII, another method or path, a folded or
 * malformed line, Transfer-Encoding, Expect, X-Amz-Target, Upgrade, a known header twice, no or a bad
 * Content-Length, a body over the limit, Connection other than keep-alive) is `http`'s to judge.
 */
static int plain_invocation(front_t *F, const char *head, size_t end, request_t *r) {
  memset(r, 0, sizeof *r);
  for (size_t i = 0; i < end; i++) {
    unsigned char c = (unsigned char)head[i];
    if (!(c == '\t' || c == '\r' || c == '\n' || (c >= 0x20 && c <= 0x7e))) return 0;
  }
  static const char START[] = "POST /endpoints/";
  static const char TAIL[] = "/invocations HTTP/1.1";
  const char *eol = find(head, end, "\r\n", 2);
  size_t line_end = eol ? (size_t)(eol - head) : end;
  /* a lone CR or LF anywhere in the head: llhttp's to judge */
  for (size_t i = 0; i < end; i++) {
    if (head[i] == '\r' && (i + 1 >= end || head[i + 1] != '\n')) return 0;
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) return 0;
  }
  if (line_end < sizeof START - 1 + sizeof TAIL - 1 + 1) return 0;
  if (memcmp(head, START, sizeof START - 1) != 0) return 0;
  if (memcmp(head + line_end - (sizeof TAIL - 1), TAIL, sizeof TAIL - 1) != 0) return 0;
  size_t ns = sizeof START - 1, ne = line_end - (sizeof TAIL - 1);
  if (ne - ns >= sizeof r->endpoint) return 0;
  for (size_t i = ns; i < ne; i++) {
    char c = head[i];
    /* the endpoint segment: no '/', '?', '#', whitespace; '%' escapes are left to JavaScript */
    if (c == '/' || c == '?' || c == '#' || c == ' ' || c == '\t' || c == '%') return 0;
  }
  memcpy(r->endpoint, head + ns, ne - ns);
  r->endpoint[ne - ns] = 0;
  static const char *NOT_HERE[] = {"transfer-encoding", "expect", "x-amz-target", "upgrade"};
  size_t at = line_end + 2;
  while (at < end) {
    const char *e2 = find(head + at, end - at, "\r\n", 2);
    size_t le = e2 ? (size_t)(e2 - head) : end;
    size_t colon = at;
    while (colon < le && tchar((unsigned char)head[colon])) colon++;
    if (colon == at || colon == le || head[colon] != ':') return 0;
    for (int k = 0; k < 4; k++)
      if (strlen(NOT_HERE[k]) == colon - at && strncasecmp(NOT_HERE[k], head + at, colon - at) == 0) return 0;
    int idx = known(F, head + at, colon - at);
    if (idx >= 0) {
      if (r->value[idx]) return 0;
      size_t s = colon + 1, t = le;
      while (s < t && (head[s] == ' ' || head[s] == '\t')) s++;
      while (t > s && (head[t - 1] == ' ' || head[t - 1] == '\t')) t--;
      r->value[idx] = head + s;
      r->value_len[idx] = t - s;
    }
    at = le + 2;
  }
  int cl = F->at[H_CONTENT_LENGTH], cn = F->at[H_CONNECTION];
  if (cl < 0 || !r->value[cl] || r->value_len[cl] == 0 || r->value_len[cl] > 15) return 0;
  long long n = 0;
  for (size_t i = 0; i < r->value_len[cl]; i++) {
    char c = r->value[cl][i];
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
  }
  if (n > F->max_payload) return 0;
  if (cn >= 0 && r->value[cn] && !(r->value_len[cn] == 10 && strncasecmp(r->value[cn], "keep-alive", 10) == 0)) return 0;
  r->head_len = end + 4;
  r->body_len = n;
  return 1;
}

/* Checks the router would make ----------------------------------------------------------------- */

/** SageMaker's name pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$ */
static int sm_name(const char *p, size_t n, size_t max) {
  if (n == 0 || n > max) return n == 0 && max != 0 ? 0 : n <= max;
  if (!isalnum((unsigned char)p[0]) || !isalnum((unsigned char)p[n - 1])) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)p[i]) && p[i] != '-') return 0;
  return 1;
}

/** The headers are within what invocationFromHeaders accepts and what the native path serves. */
static int headers_plain(front_t *F, const request_t *r) {
  static const struct { int header; size_t max; int kind; } RULES[] = {
      {H_CONTENT_TYPE, 1024, 0}, {H_ACCEPT, 1024, 0}, {H_CUSTOM_ATTRIBUTES, 1024, 0},
      {H_TARGET_VARIANT, 63, 1}, {H_INFERENCE_ID, 64, 2},
      {H_TARGET_MODEL, 0, 3}, {H_TARGET_HOSTNAME, 0, 3},
  };
  for (size_t k = 0; k < sizeof RULES / sizeof RULES[0]; k++) {
    int i = F->at[RULES[k].header];
    if (i < 0 || !r->value[i]) continue;
    const char *v = r->value[i];
    size_t n = r->value_len[i];
    switch (RULES[k].kind) {
      case 0: /* ASCII (the head holds nothing else), a length */
        if (n > RULES[k].max) return 0;
        break;
      case 1:
        if (!sm_name(v, n, RULES[k].max)) return 0;
        break;
      case 2: /* ^\S[\x20-\x7E]*$, 1..64 */
        if (n < 1 || n > RULES[k].max || v[0] == ' ') return 0;
        for (size_t j = 0; j < n; j++)
          if (v[j] == '\t') return 0;
        break;
      default: /* headers for other kinds of endpoint: the router's error */
        return 0;
    }
  }
  return sm_name(r->endpoint, strlen(r->endpoint), 63);
}

/* Calling the container ----------------------------------------------------------------------- */

static int connect_to(pool_t *p) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->port)};
  if (inet_pton(AF_INET, p->host, &a.sin_addr) != 1) {
    close(fd);
    return -1;
  }
  int r = connect(fd, (struct sockaddr *)&a, sizeof a);
  if (r < 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  if (r < 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&pfd, 1, CONNECT_TIMEOUT_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
      close(fd);
      return -1;
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

typedef struct {
  const char *kind; /* NULL: a 2xx answer; "answer": another status; or a failure */
  char detail[512];
  int status;
  buf_t head;        /* the answer's head lines after the status line */
  buf_t body;
  const char *content_type;
  size_t content_type_len;
  const char *custom;
  size_t custom_len;
  int reusable;
} answer_t;

/** The value of header `name` in the parsed head lines (lower-case names, one per line), or NULL. */
static const char *header_value(buf_t *h, const char *name, size_t *len) {
  size_t n = strlen(name);
  size_t at = 0;
  while (at < h->len) {
    const char *eol = memchr(h->p + at, '\n', h->len - at);
    size_t le = eol ? (size_t)(eol - h->p) : h->len;
    if (le - at > n && memcmp(h->p + at, name, n) == 0 && h->p[at + n] == ':') {
      *len = le - at - n - 1;
      return h->p + at + n + 1;
    }
    at = le + 1;
  }
  return NULL;
}

static int contains_ci(const char *p, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (strncasecmp(p + i, needle, m) == 0) return 1;
  return 0;
}

/** The latin1 characters JavaScript's String.prototype.trim removes. */
static int js_space(unsigned char c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0;
}

/** JSON.stringify of the latin1 text p[0..n) into out (truncated to fit), as the container client quotes. */
static void json_quote(char *out, size_t cap, const char *p, size_t n) {
  size_t o = 0;
  if (cap < 3) return;
  out[o++] = '"';
  for (size_t i = 0; i < n && o + 8 < cap; i++) {
    unsigned char c = (unsigned char)p[i];
    const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
    if (esc) {
      o += (size_t)snprintf(out + o, cap - o, "%s", esc);
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o++] = '"';
  out[o] = 0;
}

/** What the container client names a socket error by (Node's error codes). */
static const char *errno_name(int e) {
  switch (e) {
    case ECONNRESET: return "ECONNRESET";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    default: return strerror(e);
  }
}

/**
 * Parses the answer head at h[0..n) into `a->head` as "name:value\n" lines: names in lower case,
 * values trimmed, a repeated header's values joined with ", " (the container client's rules).
 * Returns 0, or -1 with a->kind "malformed".
 */
static int parse_answer_head(const char *h, size_t n, answer_t *a, int *keep_alive, int *minor) {
  const char *eol = find(h, n, "\r\n", 2);
  size_t sl = eol ? (size_t)(eol - h) : n;
  if (!(sl >= 12 && memcmp(h, "HTTP/1.", 7) == 0 && (h[7] == '0' || h[7] == '1') && h[8] == ' ' && h[9] >= '1' && h[9] <= '9' &&
        isdigit((unsigned char)h[10]) && isdigit((unsigned char)h[11]) && (sl == 12 || h[12] == ' '))) {
    char q[200];
    json_quote(q, sizeof q, h, sl < 80 ? sl : 80);
    a->kind = "malformed";
    snprintf(a->detail, sizeof a->detail, "not an HTTP/1.x status line: %s", q);
    return -1;
  }
  *minor = h[7] - '0';
  a->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
  a->head.len = 0;
  size_t at = eol ? sl + 2 : n;
  while (at < n) {
    const char *e2 = find(h + at, n - at, "\r\n", 2);
    size_t le = e2 ? (size_t)(e2 - h) : n;
    const char *colon = memchr(h + at, ':', le - at);
    if (!colon || colon == h + at) {
      char q[200];
      json_quote(q, sizeof q, h + at, le - at < 80 ? le - at : 80);
      a->kind = "malformed";
      snprintf(a->detail, sizeof a->detail, "a malformed header line %s", q);
      return -1;
    }
    size_t cn = (size_t)(colon - h);
    size_t s = cn + 1, t = le;
    while (s < t && js_space((unsigned char)h[s])) s++;
    while (t > s && js_space((unsigned char)h[t - 1])) t--;
    char name[256];
    size_t nl = cn - at < sizeof name - 1 ? cn - at : sizeof name - 1;
    for (size_t i = 0; i < nl; i++) name[i] = (char)tolower((unsigned char)h[at + i]);
    name[nl] = 0;
    for (size_t i = s; i < t; i++) {
      unsigned char c = (unsigned char)h[i];
      if (!(c == '\t' || (c >= 0x20 && c <= 0x7e) || c >= 0x80)) {
        char q[200];
        json_quote(q, sizeof q, name, nl < 80 ? nl : 80);
        a->kind = "malformed";
        snprintf(a->detail, sizeof a->detail, "a control byte in the value of header %s", q);
        return -1;
      }
    }
    size_t old_len;
    const char *old = header_value(&a->head, name, &old_len);
    if (old) {
      /* a repeated header: rebuild its line with ", " and the new value (rare: not worth a map) */
      buf_t nb = {0};
      size_t p = 0;
      while (p < a->head.len) {
        const char *e3 = memchr(a->head.p + p, '\n', a->head.len - p);
        size_t l3 = (size_t)(e3 - a->head.p);
        buf_add(&nb, a->head.p + p, l3 - p);
        if (a->head.p + p + nl + 1 == old) {
          buf_add(&nb, ", ", 2);
          buf_add(&nb, h + s, t - s);
        }
        buf_add(&nb, "\n", 1);
        p = l3 + 1;
      }
      buf_free(&a->head);
      a->head = nb;
    } else {
      buf_add(&a->head, name, nl);
      buf_add(&a->head, ":", 1);
      buf_add(&a->head, h + s, t - s);
      buf_add(&a->head, "\n", 1);
    }
    at = le + 2;
  }
  size_t cl;
  const char *c = header_value(&a->head, "connection", &cl);
  *keep_alive = *minor == 1 ? !(c && contains_ci(c, cl, "close")) : (c && contains_ci(c, cl, "keep-alive"));
  return 0;
}

/**
 * Reads more of an answer into `in` before the deadline: the byte count; 0 at the end of the
 * connection when `end_ok`; otherwise -1 with a->kind "timeout" or "closed".
 */
static ssize_t read_answer_more(int fd, buf_t *in, int64_t deadline_us, answer_t *a, int end_ok) {
  int64_t left = (deadline_us - now_us()) / 1000;
  ssize_t n = left <= 0 ? -2 : read_more(fd, in, (int)left);
  int e = errno;
  if (n == -2) {
    a->kind = "timeout";
    snprintf(a->detail, sizeof a->detail, "no answer before the deadline");
    return -1;
  }
  if (n == 0 && end_ok) return 0;
  if (n <= 0) {
    a->kind = "closed";
    snprintf(a->detail, sizeof a->detail, "%s", n == 0 ? "the container closed the connection" : errno_name(e));
    return -1;
  }
  return n;
}

/** Reads the whole answer from `fd` into `a` (the container client's framing). 0, or -1 with a->kind. */
static int read_answer(front_t *F, int fd, answer_t *a, int64_t deadline_us) {
  buf_t in = {0};
  size_t pos = 0;
  int keep_alive = 1, minor = 1;
  int rc = -1;
  /* the head, skipping 1xx answers */
  for (;;) {
    const char *end;
    while (!(end = find(in.p + pos, in.len - pos, "\r\n\r\n", 4))) {
      if (in.len - pos > MAX_ANSWER_HEAD) {
        a->kind = "malformed";
        snprintf(a->detail, sizeof a->detail, "an answer head larger than %d bytes", MAX_ANSWER_HEAD);
        goto out;
      }
      if (read_answer_more(fd, &in, deadline_us, a, 0) < 0) goto out;
    }
    size_t hl = (size_t)(end - (in.p + pos));
    if (parse_answer_head(in.p + pos, hl, a, &keep_alive, &minor)) goto out;
    pos += hl + 4;
    if (a->status >= 200) break;
    a->status = 0;
  }
  size_t tel, cll;
  const char *te = header_value(&a->head, "transfer-encoding", &tel);
  const char *cl = header_value(&a->head, "content-length", &cll);
  enum { LENGTH, CHUNKED, CLOSE } framing;
  long long remaining = 0;
  if (a->status == 204 || a->status == 304) {
    framing = LENGTH;
  } else if (te && contains_ci(te, tel, "chunked")) {
    framing = CHUNKED;
  } else if (cl) {
    if (cll == 0) goto bad_length;
    /* leading zeros, which the container client accepts, do not count towards the 15 digits */
    while (cll > 1 && cl[0] == '0' && isdigit((unsigned char)cl[1])) {
      cl++;
      cll--;
    }
    if (cll > 15) goto bad_length;
    for (size_t i = 0; i < cll; i++) {
      if (!isdigit((unsigned char)cl[i])) goto bad_length;
      remaining = remaining * 10 + (cl[i] - '0');
    }
    if (remaining > F->max_response) {
      a->kind = "too-large";
      snprintf(a->detail, sizeof a->detail, "an answer of %lld bytes", remaining);
      goto out;
    }
    framing = LENGTH;
  } else {
    framing = CLOSE;
    keep_alive = 0;
  }
  /* the body */
  int chunk_stage = 0; /* 0 size line, 1 data, 2 CRLF after data, 3 trailers */
  for (;;) {
    if (framing == LENGTH) {
      long long take = (long long)(in.len - pos) < remaining ? (long long)(in.len - pos) : remaining;
      buf_add(&a->body, in.p + pos, (size_t)take);
      pos += (size_t)take;
      remaining -= take;
      if (remaining == 0) break;
    } else if (framing == CLOSE) {
      buf_add(&a->body, in.p + pos, in.len - pos);
      pos = in.len;
    } else {
      int progressed = 1;
      while (progressed) {
        progressed = 0;
        if (chunk_stage == 0 || chunk_stage == 3) {
          const char *e = find(in.p + pos, in.len - pos, "\r\n", 2);
          if (!e && in.len - pos > MAX_ANSWER_HEAD) {
            a->kind = "malformed";
            snprintf(a->detail, sizeof a->detail, "a chunk-size or trailer line that never ends");
            goto out;
          }
          if (!e) break;
          size_t ll = (size_t)(e - (in.p + pos));
          if (chunk_stage == 3) {
            pos += ll + 2;
            if (ll == 0) goto whole;
          } else {
            const char *l = in.p + pos;
            size_t skip = ll > 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') && isxdigit((unsigned char)l[2]) ? 2 : 0;
            if (ll == 0 || !isxdigit((unsigned char)l[0])) {
              char q[100];
              json_quote(q, sizeof q, l, ll < 40 ? ll : 40);
              a->kind = "malformed";
              snprintf(a->detail, sizeof a->detail, "a bad chunk size %s", q);
              goto out;
            }
            long long size = 0;
            for (size_t i = skip; i < ll && isxdigit((unsigned char)l[i]); i++) {
              size = size * 16 + (isdigit((unsigned char)l[i]) ? l[i] - '0' : (tolower((unsigned char)l[i]) - 'a' + 10));
              if (size > F->max_response) {
                a->kind = "too-large";
                snprintf(a->detail, sizeof a->detail, "an answer of more than %lld bytes", F->max_response);
                goto out;
              }
            }
            pos += ll + 2;
            remaining = size;
            chunk_stage = size == 0 ? 3 : 1;
          }
          progressed = 1;
        } else if (chunk_stage == 1) {
          long long take = (long long)(in.len - pos) < remaining ? (long long)(in.len - pos) : remaining;
          if (take == 0) break;
          buf_add(&a->body, in.p + pos, (size_t)take);
          pos += (size_t)take;
          remaining -= take;
          if (remaining == 0) chunk_stage = 2;
          progressed = 1;
        } else {
          if (in.len - pos < 2) break;
          if (in.p[pos] != '\r' || in.p[pos + 1] != '\n') {
            a->kind = "malformed";
            snprintf(a->detail, sizeof a->detail, "a chunk not followed by CRLF");
            goto out;
          }
          pos += 2;
          chunk_stage = 0;
          progressed = 1;
        }
      }
    }
    if ((long long)a->body.len > F->max_response) {
      a->kind = "too-large";
      snprintf(a->detail, sizeof a->detail, "an answer of more than %lld bytes", F->max_response);
      goto out;
    }
    buf_consume(&in, pos);
    pos = 0;
    ssize_t n = read_answer_more(fd, &in, deadline_us, a, framing == CLOSE);
    if (n < 0) goto out;
    if (n == 0) break; /* the end of an answer framed by the connection's end */
  }
whole:
  a->reusable = keep_alive && pos == in.len;
  a->content_type = header_value(&a->head, "content-type", &a->content_type_len);
  a->custom = header_value(&a->head, "x-amzn-sagemaker-custom-attributes", &a->custom_len);
  if (a->status < 200 || a->status >= 300) a->kind = "answer";
  rc = 0;
  goto out;
bad_length: {
  char q[100];
  json_quote(q, sizeof q, cl, cll < 40 ? cll : 40);
  a->kind = "malformed";
  snprintf(a->detail, sizeof a->detail, "a bad Content-Length %s", q);
}
out:
  buf_free(&in);
  return rc;
}

static void random_hex(char *out, size_t n) {
  unsigned char b[32];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
    for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)(rand() ^ (int)now_us());
  }
  if (fd >= 0) close(fd);
  static const char HEX[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) out[i] = HEX[(b[i % sizeof b] >> ((i & 1) * 4)) & 15];
}

static void request_id(front_t *F, char out[64]) {
  unsigned long long n = atomic_fetch_add(&F->counter, 1) & 0xffffffffffffULL;
  snprintf(out, 64, "%.24s%012llx", F->prefix, n);
}

/** "date: …\r\nconnection: …\r\n…\r\n\r\n", as front.ts's HeadTail writes it. */
static void head_tail(front_t *F, buf_t *out, int keep_alive) {
  char date[64];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  static const char *DAYS[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *MONTHS[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  snprintf(date, sizeof date, "date: %s, %02d %s %d %02d:%02d:%02d GMT\r\n", DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon], tm.tm_year + 1900,
           tm.tm_hour, tm.tm_min, tm.tm_sec);
  buf_str(out, date);
  if (keep_alive) {
    char ka[64];
    snprintf(ka, sizeof ka, "connection: keep-alive\r\nkeep-alive: timeout=%d\r\n\r\n", F->keep_alive_ms / 1000);
    buf_str(out, ka);
  } else {
    buf_str(out, "connection: close\r\n\r\n");
  }
}

static uint64_t xorshift(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static double random01(void) {
  static __thread uint64_t s = 0;
  if (!s) s = (uint64_t)now_us() * 2654435761u + (uint64_t)pthread_self();
  return (double)(xorshift(&s) >> 11) / 9007199254740992.0;
}

/** Weighted choice of front.ts's router: TargetVariant, the one variant, else by weight. */
static variant_t *pick_variant(front_t *F, endpoint_t *e, const request_t *r) {
  int tv = F->at[H_TARGET_VARIANT];
  if (tv >= 0 && r->value[tv]) {
    for (int i = 0; i < e->nvariants; i++)
      if (strlen(e->variants[i].name) == r->value_len[tv] && memcmp(e->variants[i].name, r->value[tv], r->value_len[tv]) == 0) return &e->variants[i];
    return NULL;
  }
  if (e->nvariants == 1) return &e->variants[0];
  double total = 0;
  int live = 0;
  for (int i = 0; i < e->nvariants; i++)
    if (e->variants[i].weight > 0 && e->variants[i].ninst > 0) {
      total += e->variants[i].weight;
      live++;
    }
  if (live == 0) return NULL; /* the router's answer: ServiceUnavailable or a fallback */
  double x = random01() * total;
  variant_t *last = NULL;
  for (int i = 0; i < e->nvariants; i++) {
    variant_t *v = &e->variants[i];
    if (!(v->weight > 0 && v->ninst > 0)) continue;
    last = v;
    x -= v->weight;
    if (x < 0) return v;
  }
  return last;
}

/** Least outstanding requests, ties chosen at random; skips `tried`. */
static pool_t *pick_instance(variant_t *v, pool_t **tried, int ntried) {
  pool_t *best = NULL;
  int ties = 0;
  for (int i = 0; i < v->ninst; i++) {
    pool_t *p = v->inst[i];
    int skip = 0;
    for (int k = 0; k < ntried; k++) skip |= tried[k] == p;
    if (skip) continue;
    int o = atomic_load(&p->inflight);
    if (!best || o < atomic_load(&best->inflight)) {
      best = p;
      ties = 1;
    } else if (o == atomic_load(&best->inflight)) {
      ties++;
      if (random01() * ties < 1) best = p;
    }
  }
  return best;
}

/**
 * Serves one plain invocation: its status line and headers into `out`, its body into `body` (the
 * caller adds the connection headers, decided once the answer is ready). Returns 0, or -1 when the
 * connection must be dropped (JavaScript could not answer).
 */
static int invoke(conn_t *c, const request_t *r, buf_t *out, buf_t *body) {
  front_t *F = c->f;
  char rid[64];
  request_id(F, rid);
  int64_t started = now_us();
  ask_t a = {.req = r, .conn = c, .request_id = rid};
  endpoint_t *e = headers_plain(F, r) ? endpoint_get(F, r->endpoint) : NULL;
  variant_t *v = e ? pick_variant(F, e, r) : NULL;
  answer_t ans = {0};
  pool_t *p = NULL;
  pool_t *tried[8];
  int ntried = 0;
  int fd = -1;
  int64_t model_us = 0;
  /* the call's deadline counts from here, as the router's does (connecting is part of it) */
  int64_t deadline = now_us() + (int64_t)F->invocation_timeout_ms * 1000;
  while (v && ntried < 8) {
    p = pick_instance(v, tried, ntried);
    if (!p) break;
    if (atomic_fetch_add(&p->inflight, 1) >= MAX_INFLIGHT) {
      /* the least busy container is full: JavaScript's client queues the call */
      atomic_fetch_sub(&p->inflight, 1);
      p = NULL;
      break;
    }
    fd = pool_take(p);
    if (fd < 0) fd = connect_to(p);
    if (fd >= 0) break;
    /* refused: never delivered, so another instance (or JavaScript) may take it */
    atomic_fetch_sub(&p->inflight, 1);
    tried[ntried++] = p;
    p = NULL;
  }
  if (fd >= 0) {
    buf_t req = {0};
    char line[128];
    snprintf(line, sizeof line, "POST /invocations HTTP/1.1\r\nhost: %s:%d\r\n", p->host, p->port);
    buf_str(&req, line);
    static const int FORWARD[] = {H_CONTENT_TYPE, H_ACCEPT, H_CUSTOM_ATTRIBUTES, H_INFERENCE_ID};
    for (int k = 0; k < 4; k++) {
      int i = F->at[FORWARD[k]];
      if (i < 0 || !r->value[i]) continue;
      buf_str(&req, HEADER_NAMES[FORWARD[k]]);
      buf_add(&req, ": ", 2);
      buf_add(&req, r->value[i], r->value_len[i]);
      buf_add(&req, "\r\n", 2);
    }
    snprintf(line, sizeof line, "content-length: %lld\r\n\r\n", r->body_len);
    buf_str(&req, line);
    buf_add(&req, c->in.p + r->head_len, (size_t)r->body_len);
    int64_t sent = now_us();
    /* a container that stops reading the body meets the same deadline as one that never answers */
    int64_t left = deadline - sent;
    struct timeval tv = {.tv_sec = left > 0 ? left / 1000000 : 0, .tv_usec = left > 0 ? left % 1000000 : 1};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (write_all(fd, req.p, req.len) < 0) {
      int e = errno;
      ans.kind = e == EAGAIN || e == EWOULDBLOCK ? "timeout" : "closed";
      snprintf(ans.detail, sizeof ans.detail, "%s", e == EAGAIN || e == EWOULDBLOCK ? "no answer before the deadline" : errno_name(e));
    } else {
      read_answer(F, fd, &ans, deadline);
    }
    buf_free(&req);
    model_us = now_us() - sent;
    if (!ans.kind || strcmp(ans.kind, "answer") == 0) {
      if (ans.reusable) pool_give(p, fd);
      else close(fd);
    } else {
      close(fd);
    }
    atomic_fetch_sub(&p->inflight, 1);
  }
  int rc = 0;
  if (fd >= 0 && !ans.kind) {
    /* 200, the container's body and Content-Type, as answerInvocation writes them */
    char n[32];
    buf_str(out, "HTTP/1.1 200 OK\r\ncontent-type: ");
    if (ans.content_type) buf_add(out, ans.content_type, ans.content_type_len);
    else buf_str(out, "application/octet-stream");
    snprintf(n, sizeof n, "\r\ncontent-length: %zu\r\n", ans.body.len);
    buf_str(out, n);
    buf_str(out, "x-amzn-requestid: ");
    buf_str(out, rid);
    buf_str(out, "\r\nx-amzn-invoked-production-variant: ");
    buf_str(out, v->name);
    buf_str(out, "\r\n");
    if (ans.custom) {
      buf_str(out, "x-amzn-sagemaker-custom-attributes: ");
      buf_add(out, ans.custom, ans.custom_len);
      buf_str(out, "\r\n");
    }
    buf_add(body, ans.body.p, ans.body.len);
    slot_t *s = slot_get(v->slot);
    atomic_fetch_add(&s->invocations, 1);
    atomic_fetch_add(&s->model_sum, (unsigned long long)model_us);
    atomic_fetch_add(&s->model_count, 1);
    int64_t overhead = now_us() - started - model_us;
    atomic_fetch_add(&s->overhead_sum, (unsigned long long)(overhead > 0 ? overhead : 0));
    atomic_fetch_add(&s->overhead_count, 1);
  } else {
    if (fd >= 0) {
      a.kind = ans.kind;
      a.detail = ans.detail[0] ? ans.detail : NULL;
      a.status = ans.status;
      a.variant = v->name;
      a.instance = p->id;
      a.model_ms = (double)model_us / 1000.0;
      if (strcmp(ans.kind, "answer") == 0) {
        a.answer_body = ans.body.p ? ans.body.p : "";
        a.answer_body_len = ans.body.len;
      }
    }
    size_t len = 0;
    char *answer = ask(&a, &len);
    if (!answer) {
      rc = -1;
    } else {
      /* JavaScript rendered the head without its tail: add ours (keep-alive or close), then the body */
      const char *sep = find(answer, len, "\r\n\r\n", 4);
      if (!sep) {
        rc = -1;
      } else {
        size_t hl = (size_t)(sep - answer) + 2;
        buf_add(out, answer, hl);
        buf_add(body, sep + 4, len - hl - 2);
      }
      free(answer);
    }
  }
  buf_free(&ans.head);
  buf_free(&ans.body);
  endpoint_unref(e);
  return rc;
}

static void *conn_main(void *arg) {
  conn_t *c = arg;
  front_t *F = c->f;
  buf_t out = {0}, body = {0};
  for (;;) {
    const char *end;
    while (!(end = find(c->in.p, c->in.len, "\r\n\r\n", 4))) {
      if (c->in.len > MAX_HEAD || find(c->in.p, c->in.len, "\n\n", 2)) goto hand;
      if (atomic_load(&F->closing) && c->in.len == 0) goto done;
      ssize_t n = read_more(c->fd, &c->in, F->keep_alive_ms);
      if (n <= 0) goto done; /* the end, an error, or idle for the keep-alive timeout */
    }
    if (atomic_load(&F->closing)) goto hand;
    size_t head_end = (size_t)(end - c->in.p);
    request_t r;
    if (head_end > MAX_HEAD || !plain_invocation(F, c->in.p, head_end, &r)) goto hand;
    const char *parsed = c->in.p;
    while ((long long)c->in.len < (long long)r.head_len + r.body_len) {
      ssize_t n = read_more(c->fd, &c->in, F->keep_alive_ms);
      if (n <= 0) goto done;
    }
    /* the header values point into c->in: found again if reading the body moved it */
    if (c->in.p != parsed && !plain_invocation(F, c->in.p, head_end, &r)) goto hand;
    atomic_store(&c->busy, 1);
    out.len = 0;
    body.len = 0;
    int rc = invoke(c, &r, &out, &body);
    /* as front.ts: a front closing meanwhile ends the connection after this answer */
    int keep_alive = !atomic_load(&F->closing);
    if (rc == 0) {
      head_tail(F, &out, keep_alive);
      buf_add(&out, body.p, body.len);
    }
    atomic_store(&c->busy, 0);
    if (rc < 0 || write_all(c->fd, out.p, out.len) < 0) goto done;
    buf_consume(&c->in, r.head_len + (size_t)r.body_len);
    if (!keep_alive) {
      shutdown(c->fd, SHUT_WR);
      goto done;
    }
  }
hand: {
  /* off the list first, so that close() never shuts down a descriptor that is no longer ours */
  int fd = c->fd;
  buf_t in = c->in;
  c->in = (buf_t){0};
  buf_free(&out);
  buf_free(&body);
  conn_forget(c);
  hand_off(F, fd, in.p, in.len);
  buf_free(&in);
  return NULL;
}
done: {
  int fd = c->fd;
  buf_free(&out);
  buf_free(&body);
  conn_forget(c);
  close(fd);
  return NULL;
}
}

static void *accept_main(void *arg) {
  front_t *F = arg;
  /* its own copy: close() shuts the socket down, and this thread closes it when accept fails */
  int listen_fd = F->listen_fd;
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        if (errno != EINTR && errno != ECONNABORTED) usleep(10000);
        if (!atomic_load(&F->closing)) continue;
      }
      close(listen_fd); /* shut down by close(), or failing for good */
      return NULL;
    }
    if (atomic_load(&F->closing)) {
      close(fd);
      continue;
    }
    if (atomic_load(&F->nconns) >= MAX_CONNS) {
      /* no thread for it: Node's `http` server serves it, invocations included */
      hand_off(F, fd, NULL, 0);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* a client that stops reading its answers is dropped after the keep-alive timeout, not waited on forever */
    struct timeval tv = {.tv_sec = F->keep_alive_ms / 1000, .tv_usec = (F->keep_alive_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    conn_t *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->f = F;
    pthread_mutex_lock(&F->conns_mu);
    c->next = F->conns;
    if (F->conns) F->conns->prev = c;
    F->conns = c;
    pthread_mutex_unlock(&F->conns_mu);
    atomic_fetch_add(&F->nconns, 1);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, conn_main, c) != 0) {
      conn_forget(c); /* off the list before the descriptor's number can be reused */
      close(fd);
    }
    pthread_attr_destroy(&attr);
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* The JavaScript side                                                                              */

#define CHECK(call)                                                                \
  do {                                                                             \
    if ((call) != napi_ok) {                                                       \
      napi_throw_error(env, NULL, "berth native front: " #call " failed");        \
      return NULL;                                                                 \
    }                                                                              \
  } while (0)

static char *get_string(napi_env env, napi_value v) {
  size_t n;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

static napi_value prop(napi_env env, napi_value o, const char *name) {
  napi_value v;
  napi_get_named_property(env, o, name, &v);
  return v;
}

static int64_t prop_int(napi_env env, napi_value o, const char *name) {
  int64_t n = 0;
  napi_get_value_int64(env, prop(env, o, name), &n);
  return n;
}

/** The front given as the first argument (an external made by start). */
static front_t *front_arg(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value args[3];
  size_t n = 3;
  if (napi_get_cb_info(env, info, &n, args, NULL, NULL) != napi_ok || n < 1) return NULL;
  front_t *f = NULL;
  if (napi_get_value_external(env, args[0], (void **)&f) != napi_ok) {
    napi_throw_type_error(env, NULL, "berth native front: not a front");
    return NULL;
  }
  *argc = n - 1;
  for (size_t i = 1; i < n; i++) argv[i - 1] = args[i];
  return f;
}

/**
 * start({ host, port, keepAliveMs, maxPayloadBytes, invocationTimeoutMs, maxResponseBytes, headers,
 * handOff(fd, bytes), delegate(ticket, headers, endpointName, body, requestId, outcome) }) → [front, port].
 */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value o;
  CHECK(napi_get_cb_info(env, info, &argc, &o, NULL, NULL));
  char *host = get_string(env, prop(env, o, "host"));
  int port = (int)prop_int(env, o, "port");
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || !host || inet_pton(AF_INET, host, &a.sin_addr) != 1 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 511) < 0) {
    int e = errno;
    char msg[200];
    snprintf(msg, sizeof msg, "listen %s %s:%d", e == EADDRINUSE ? "EADDRINUSE" : strerror(e), host ? host : "?", port);
    if (fd >= 0) close(fd);
    free(host);
    napi_value err, m, code;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_string_utf8(env, e == EADDRINUSE ? "EADDRINUSE" : "ELISTEN", NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, m, &err);
    napi_throw(env, err);
    return NULL;
  }
  free(host);
  front_t *F = calloc(1, sizeof *F);
  pthread_rwlock_init(&F->routes_mu, NULL);
  pthread_mutex_init(&F->conns_mu, NULL);
  F->keep_alive_ms = (int)prop_int(env, o, "keepAliveMs");
  F->max_payload = prop_int(env, o, "maxPayloadBytes");
  F->invocation_timeout_ms = (int)prop_int(env, o, "invocationTimeoutMs");
  F->max_response = prop_int(env, o, "maxResponseBytes");
  napi_value names = prop(env, o, "headers");
  uint32_t nn = 0;
  napi_get_array_length(env, names, &nn);
  for (uint32_t i = 0; i < nn && F->nnames < MAX_NAMES; i++) {
    napi_value s;
    napi_get_element(env, names, i, &s);
    F->names[F->nnames++] = get_string(env, s);
  }
  /* the framing headers the front reads itself */
  for (int k = H_CONTENT_LENGTH; k <= H_CONNECTION; k++)
    if (name_index(F, HEADER_NAMES[k]) < 0 && F->nnames < MAX_NAMES) F->names[F->nnames++] = strdup(HEADER_NAMES[k]);
  for (int i = 0; i < F->nnames; i++) F->name_len[i] = strlen(F->names[i]);
  for (int h = 0; h < H_COUNT; h++) F->at[h] = name_index(F, HEADER_NAMES[h]);
  /* "xxxxxxxx-xxxx-4xxx-yxxx-": a version-4 UUID's form, as request-id.ts makes */
  random_hex(F->prefix, 24);
  F->prefix[8] = F->prefix[13] = F->prefix[18] = F->prefix[23] = '-';
  F->prefix[14] = '4';
  F->prefix[19] = "89ab"[F->prefix[19] % 4];
  F->prefix[24] = 0;
  char seed[12];
  random_hex(seed, sizeof seed);
  unsigned long long start = 0;
  for (int i = 0; i < 11; i++) start = start * 16 + (unsigned long long)(isdigit((unsigned char)seed[i]) ? seed[i] - '0' : seed[i] - 'a' + 10);
  atomic_store(&F->counter, start);
  socklen_t len = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &len);
  F->port = ntohs(a.sin_port);
  F->listen_fd = fd;
  napi_value name;
  napi_create_string_utf8(env, "berth-native-front", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_threadsafe_function(env, prop(env, o, "handOff"), NULL, name, 0, 1, NULL, NULL, NULL, handoff_js, &F->handoff));
  CHECK(napi_create_threadsafe_function(env, prop(env, o, "delegate"), NULL, name, 0, 1, NULL, NULL, NULL, delegate_js, &F->delegate));
  /* held (keeping the event loop alive, as a listening server does) until close */
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_create(&t, &attr, accept_main, F);
  pthread_attr_destroy(&attr);
  napi_value out, ext, p;
  napi_create_array_with_length(env, 2, &out);
  napi_create_external(env, F, NULL, NULL, &ext);
  napi_create_int32(env, F->port, &p);
  napi_set_element(env, out, 0, ext);
  napi_set_element(env, out, 1, p);
  return out;
}

/** reply(ticket, answer | undefined): JavaScript's answer to a delegated request. */
static napi_value js_reply(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ask_t *a;
  CHECK(napi_get_value_external(env, argv[0], (void **)&a));
  bool is_buffer = false;
  napi_is_buffer(env, argv[1], &is_buffer);
  char *copy = NULL;
  size_t len = 0;
  if (is_buffer) {
    void *data;
    napi_get_buffer_info(env, argv[1], &data, &len);
    copy = malloc(len ? len : 1);
    memcpy(copy, data, len);
  }
  ask_finish(a, copy, len);
  return NULL;
}

/**
 * publish(front, endpointName, route | null): route = { variants: [{ name, weight, slot, instances:
 * [{ id, host, port }] }] }, with only the instances ready for traffic. An instance that left the
 * route keeps no idle connections.
 */
static napi_value js_publish(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value argv[2];
  front_t *F = front_arg(env, info, &argc, argv);
  if (!F || argc < 2) return NULL;
  char *name = get_string(env, argv[0]);
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  endpoint_t *e = NULL;
  if (t == napi_object) {
    e = calloc(1, sizeof *e);
    atomic_store(&e->refs, 1);
    e->name = strdup(name);
    napi_value vs = prop(env, argv[1], "variants");
    uint32_t nv = 0;
    napi_get_array_length(env, vs, &nv);
    e->nvariants = (int)nv;
    e->variants = calloc(nv ? nv : 1, sizeof(variant_t));
    for (uint32_t i = 0; i < nv; i++) {
      napi_value v;
      napi_get_element(env, vs, i, &v);
      variant_t *var = &e->variants[i];
      var->name = get_string(env, prop(env, v, "name"));
      napi_get_value_double(env, prop(env, v, "weight"), &var->weight);
      var->slot = (int)prop_int(env, v, "slot");
      slot_get(var->slot);
      napi_value is = prop(env, v, "instances");
      uint32_t ni = 0;
      napi_get_array_length(env, is, &ni);
      var->ninst = (int)ni;
      var->inst = calloc(ni ? ni : 1, sizeof(pool_t *));
      for (uint32_t k = 0; k < ni; k++) {
        napi_value inst;
        napi_get_element(env, is, k, &inst);
        char *id = get_string(env, prop(env, inst, "id"));
        char *host = get_string(env, prop(env, inst, "host"));
        var->inst[k] = pool_for(id, host, (int)prop_int(env, inst, "port"));
        free(id);
        free(host);
      }
    }
  }
  unsigned h = hash(name);
  pthread_rwlock_wrlock(&F->routes_mu);
  endpoint_t **at = &F->routes[h];
  while (*at && strcmp((*at)->name, name) != 0) at = &(*at)->next;
  endpoint_t *old = *at;
  if (old) *at = old->next;
  if (e) {
    e->next = F->routes[h];
    F->routes[h] = e;
  }
  pthread_rwlock_unlock(&F->routes_mu);
  if (old) {
    for (int i = 0; i < old->nvariants; i++)
      for (int k = 0; k < old->variants[i].ninst; k++) {
        pool_t *p = old->variants[i].inst[k];
        int still = 0;
        for (int j = 0; e && j < e->nvariants; j++)
          for (int m = 0; m < e->variants[j].ninst; m++) still |= e->variants[j].inst[m] == p;
        if (!still) pool_retire(p);
      }
    endpoint_unref(old);
  }
  free(name);
  return NULL;
}

/** inflight(instanceId): calls the native path has sent to that instance and not yet seen answered. */
static napi_value js_inflight(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg, out;
  CHECK(napi_get_cb_info(env, info, &argc, &arg, NULL, NULL));
  char *id = get_string(env, arg);
  pool_t *p = id ? pool_find(id) : NULL;
  free(id);
  napi_create_int32(env, p ? atomic_load(&p->inflight) : 0, &out);
  return out;
}

/** metrics(): [slot, invocations, modelSum, modelCount, overheadSum, overheadCount, …] since the last call. */
static napi_value js_metrics(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  napi_create_array(env, &out);
  uint32_t at = 0;
  pthread_mutex_lock(&G.slots_mu);
  for (int i = 0; i < G.nslots; i++) {
    slot_t *s = G.slots[i];
    if (!s || atomic_load(&s->invocations) == 0) continue;
    unsigned long long v[5] = {atomic_exchange(&s->invocations, 0), atomic_exchange(&s->model_sum, 0), atomic_exchange(&s->model_count, 0),
                               atomic_exchange(&s->overhead_sum, 0), atomic_exchange(&s->overhead_count, 0)};
    napi_value n;
    napi_create_int32(env, i, &n);
    napi_set_element(env, out, at++, n);
    for (int k = 0; k < 5; k++) {
      napi_create_double(env, (double)v[k], &n);
      napi_set_element(env, out, at++, n);
    }
  }
  pthread_mutex_unlock(&G.slots_mu);
  return out;
}

/** close(front): no new connections; idle ones end now, busy ones after their answer (Connection: close). */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value argv[2];
  front_t *F = front_arg(env, info, &argc, argv);
  if (!F || F->listen_fd < 0) return NULL;
  atomic_store(&F->closing, 1);
  napi_unref_threadsafe_function(env, F->handoff);
  napi_unref_threadsafe_function(env, F->delegate);
  shutdown(F->listen_fd, SHUT_RDWR); /* accept fails, and its thread closes the socket */
  F->listen_fd = -1;
  pthread_mutex_lock(&F->conns_mu);
  for (conn_t *c = F->conns; c; c = c->next)
    if (!atomic_load(&c->busy) && c->in.len == 0) shutdown(c->fd, SHUT_RD);
  pthread_mutex_unlock(&F->conns_mu);
  return NULL;
}

/** connections(front): client connections the front still serves itself. */
static napi_value js_connections(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value argv[2], out;
  front_t *F = front_arg(env, info, &argc, argv);
  if (!F) return NULL;
  napi_create_int32(env, atomic_load(&F->nconns) + atomic_load(&F->handoffs), &out);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  pthread_mutex_init(&G.pools_mu, NULL);
  pthread_mutex_init(&G.slots_mu, NULL);
  napi_property_descriptor d[] = {
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"reply", NULL, js_reply, NULL, NULL, NULL, napi_default, NULL},
      {"publish", NULL, js_publish, NULL, NULL, NULL, napi_default, NULL},
      {"inflight", NULL, js_inflight, NULL, NULL, NULL, napi_default, NULL},
      {"metrics", NULL, js_metrics, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"connections", NULL, js_connections, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
