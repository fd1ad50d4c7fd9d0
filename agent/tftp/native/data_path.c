/*
 * Underlay agent TFTP: the data phase of one read transfer in a native thread (Node-API addon).
 *
 * JS does everything before and after (request parsing, path checks, open + inode check, option
 * negotiation, stats, events, logs). This file only moves bytes: it owns one UDP socket bound to the
 * server address and connected to the client (the transfer's TID), optionally sends the OACK JS built
 * and waits for ACK 0, then sends DATA blocks read with pread() from the file descriptor JS opened
 * (and keeps open until the completion callback), window by window, until the last block is
 * acknowledged. The rules are the ones of agent/tftp/transfer.ts (ReadTransfer), kept in step:
 *
 * - lock-step (windowsize 1): duplicate ACKs are ignored (Sorcerer's Apprentice);
 * - windowed (RFC 7440): an ACK inside the window resends from the next block, a duplicate ACK causes at
 *   most one early resend per window;
 * - no progress for timeout_ms: resend the window (or OACK); after `retries` resends, give up;
 * - block numbers are 16-bit and roll over to 0 after 65535;
 * - an ERROR from the client ends the transfer (JS decides size-probe vs error from the phase);
 * - ECONNREFUSED (ICMP port unreachable on the connected socket) ends it;
 * - cancel() (server stop, replaced request) ends it, optionally telling the client.
 *
 * Waiting for an ACK spins on a non-blocking recv() for up to spin_us microseconds before sleeping in
 * poll(): on a VM a sleeping thread costs a cross-CPU wake-up per round trip, which is most of a
 * lock-step transfer's time. The spin is adaptive: when a wait outlasts it (a slow client or a real
 * network's round trip), the next SPIN_BACKOFF waits sleep at once, so spinning only costs CPU where it
 * pays. The completion is delivered to JS through a thread-safe function.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum outcome { OUT_COMPLETE, OUT_CLIENT_ERROR, OUT_TIMEOUT, OUT_SOCKET_ERROR, OUT_CANCELLED, OUT_READ_ERROR };
static const char *const outcome_names[] = {"complete", "client-error", "timeout", "socket-error", "cancelled", "read-error"};

enum { OP_DATA = 3, OP_ACK = 4, OP_ERROR = 5, MAX_OPCODE = 6 };
/* Waits that sleep without spinning after a spin that did not catch the packet. */
enum { SPIN_BACKOFF = 64 };

typedef struct transfer {
  /* Set by start(), read-only afterwards. */
  int sock;
  int file_fd;
  uint64_t size;
  uint32_t blksize, windowsize, timeout_ms, retries, spin_us;
  uint8_t *oack;
  size_t oack_len;
  napi_threadsafe_function tsfn;

  /* Cancellation: the flag is polled by the loop, the eventfd wakes poll(). The eventfd is closed by
   * the thread when it finishes, under the mutex, so cancel() never writes to a reused descriptor. */
  pthread_mutex_t mu;
  int cancel_fd;
  int finished;
  atomic_int cancelled;
  atomic_int cancel_notify;

  /* Freed when both the JS handle (finalizer) and the thread (after delivery) have let go. */
  atomic_int refs;

  /* Result. */
  enum outcome outcome;
  int in_oack; /* the transfer ended before ACK 0 of an OACK */
  int client_code;
  char client_msg[256];
  int sys_errno;
  uint64_t acked; /* highest block acknowledged (absolute, not modulo 65536) */
  uint64_t retransmits, duplicate_acks, packets_sent, malformed;
  uint64_t spins_caught, spins_missed; /* waits a spin ended / waits that went on to poll() after spinning */
} transfer_t;

static void transfer_unref(transfer_t *t) {
  if (atomic_fetch_sub(&t->refs, 1) != 1) return;
  pthread_mutex_destroy(&t->mu);
  free(t->oack);
  free(t);
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- the transfer loop (runs on its own thread) ---- */

typedef struct loop {
  transfer_t *t;
  uint8_t *slots; /* windowsize packets of 4 + blksize bytes, block b in slot b % windowsize */
  uint32_t *lens;
  uint64_t last; /* number of DATA blocks; a size that is a multiple of blksize ends with an empty one */
  uint64_t base; /* highest acknowledged block */
  uint32_t held; /* packets for base+1 .. base+held are built */
  uint32_t attempts;
  int early_resent;
  int in_oack;
  int64_t deadline;
} loop_t;

/* 0 on success (lost datagrams included: UDP), -1 with outcome set on a fatal socket error. */
static int send_packet(loop_t *l, const uint8_t *p, size_t len) {
  transfer_t *t = l->t;
  for (;;) {
    if (send(t->sock, p, len, 0) >= 0) {
      t->packets_sent++;
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == ENOBUFS || errno == EAGAIN || errno == EWOULDBLOCK) return 0; /* dropped: timeout resends */
    t->outcome = OUT_SOCKET_ERROR;
    t->sys_errno = errno;
    return -1;
  }
}

static void send_error(loop_t *l, uint16_t code, const char *msg) {
  uint8_t buf[64];
  size_t n = strlen(msg);
  buf[0] = 0;
  buf[1] = OP_ERROR;
  buf[2] = (uint8_t)(code >> 8);
  buf[3] = (uint8_t)code;
  memcpy(buf + 4, msg, n + 1);
  (void)send(l->t->sock, buf, 4 + n + 1, MSG_DONTWAIT);
}

static uint8_t *slot(loop_t *l, uint64_t block) { return l->slots + (size_t)(block % l->t->windowsize) * (4 + l->t->blksize); }

/* Build the DATA packet for `block` into its slot. -1 with outcome set on a read error. */
static int build_block(loop_t *l, uint64_t block) {
  transfer_t *t = l->t;
  uint8_t *p = slot(l, block);
  uint64_t pos = (block - 1) * t->blksize;
  uint64_t want = pos >= t->size ? 0 : (t->size - pos < t->blksize ? t->size - pos : t->blksize);
  uint64_t got = 0;
  while (got < want) {
    ssize_t n = pread(t->file_fd, p + 4 + got, want - got, (off_t)(pos + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      t->outcome = OUT_READ_ERROR;
      t->sys_errno = n < 0 ? errno : 0; /* 0: the file shrank */
      send_error(l, 0, "Read error");
      return -1;
    }
    got += (uint64_t)n;
  }
  p[0] = 0;
  p[1] = OP_DATA;
  p[2] = (uint8_t)((block >> 8) & 0xff);
  p[3] = (uint8_t)(block & 0xff);
  l->lens[block % t->windowsize] = (uint32_t)(4 + want);
  return 0;
}

static void arm(loop_t *l) { l->deadline = now_us() + (int64_t)l->t->timeout_ms * 1000; }

/* Send packets base+from+1 .. base+held. */
static int send_held(loop_t *l, uint32_t from) {
  for (uint32_t i = from; i < l->held; i++) {
    uint64_t b = l->base + 1 + i;
    if (send_packet(l, slot(l, b), l->lens[b % l->t->windowsize]) < 0) return -1;
  }
  arm(l);
  return 0;
}

/* Top the window up to min(windowsize, last - base) packets and send the new ones (all when resend_held). */
static int send_window(loop_t *l, int resend_held) {
  uint64_t left = l->last - l->base;
  uint32_t want = left < l->t->windowsize ? (uint32_t)left : l->t->windowsize;
  uint32_t old = l->held;
  for (uint32_t i = old; i < want; i++) {
    if (build_block(l, l->base + 1 + i) < 0) return -1;
    l->held = i + 1;
  }
  if (resend_held) l->t->retransmits += old;
  return send_held(l, resend_held ? 0 : old);
}

static int send_oack(loop_t *l) {
  if (send_packet(l, l->t->oack, l->t->oack_len) < 0) return -1;
  arm(l);
  return 0;
}

static int resend(loop_t *l) {
  if (l->in_oack) {
    l->t->retransmits++;
    return send_oack(l);
  }
  l->t->retransmits += l->held;
  return send_held(l, 0);
}

/* 1 when the transfer is over (outcome set), 0 to keep going, -1 on a fatal error (outcome set). */
static int on_packet(loop_t *l, const uint8_t *buf, size_t n) {
  transfer_t *t = l->t;
  if (n < 4) {
    t->malformed++;
    return 0;
  }
  uint16_t op = (uint16_t)(buf[0] << 8 | buf[1]);
  if (op == 0 || op > MAX_OPCODE) {
    t->malformed++;
    return 0;
  }
  if (op == OP_ERROR) {
    size_t len = 0;
    while (4 + len < n && buf[4 + len] != 0 && len < sizeof t->client_msg - 1) len++;
    memcpy(t->client_msg, buf + 4, len);
    t->client_msg[len] = 0;
    t->client_code = buf[2] << 8 | buf[3];
    t->outcome = OUT_CLIENT_ERROR;
    return 1;
  }
  if (op != OP_ACK) return 0; /* stray DATA/RRQ/OACK on a read transfer */
  uint16_t block = (uint16_t)(buf[2] << 8 | buf[3]);
  if (l->in_oack) {
    if (block != 0) return 0;
    l->in_oack = 0;
    l->attempts = 0;
    return send_window(l, 0);
  }
  uint32_t delta = (uint32_t)((block - (l->base & 0xffff)) & 0xffff);
  if (delta == 0) {
    t->duplicate_acks++;
    if (t->windowsize > 1 && !l->early_resent && l->held > 0) {
      l->early_resent = 1;
      return resend(l);
    }
    return 0;
  }
  if (delta > l->held) return 0; /* stale ACK from an earlier window, or garbage */
  uint32_t in_flight = l->held;
  l->base += delta;
  l->held -= delta;
  l->attempts = 0;
  l->early_resent = 0;
  if (l->base >= l->last) {
    t->outcome = OUT_COMPLETE;
    return 1;
  }
  return send_window(l, delta < in_flight);
}

static void run_transfer(transfer_t *t) {
  loop_t l = {.t = t};
  l.last = t->size / t->blksize + 1;
  l.in_oack = t->oack != NULL;
  l.slots = malloc((size_t)t->windowsize * (4 + t->blksize));
  l.lens = calloc(t->windowsize, sizeof *l.lens);
  uint8_t rbuf[1024];
  if (!l.slots || !l.lens) {
    t->outcome = OUT_READ_ERROR;
    t->sys_errno = ENOMEM;
    send_error(&l, 0, "Read error");
    goto out;
  }
  if (l.in_oack ? send_oack(&l) < 0 : send_window(&l, 0) < 0) goto out;
  int64_t spin_start = 0;
  uint32_t no_spin = 0; /* waits left to sleep without spinning */
  int spinning = 0;     /* the current wait has spun */
  for (;;) {
    if (atomic_load_explicit(&t->cancelled, memory_order_relaxed)) {
      if (atomic_load(&t->cancel_notify)) send_error(&l, 0, "Transfer aborted");
      t->outcome = OUT_CANCELLED;
      break;
    }
    ssize_t n = recv(t->sock, rbuf, sizeof rbuf, MSG_DONTWAIT);
    if (n >= 0) {
      if (spinning) t->spins_caught++;
      spin_start = 0; /* the next wait decides afresh */
      spinning = 0;
      if (on_packet(&l, rbuf, (size_t)n) != 0) break;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      t->outcome = OUT_SOCKET_ERROR;
      t->sys_errno = errno;
      break;
    }
    int64_t now = now_us();
    if (now >= l.deadline) {
      spin_start = 0;
      spinning = 0;
      if (l.attempts >= t->retries) {
        t->outcome = OUT_TIMEOUT;
        break;
      }
      l.attempts++;
      if (resend(&l) < 0) break;
      continue;
    }
    if (t->spin_us > 0 && spin_start == 0) {
      if (no_spin == 0) {
        spin_start = now;
        spinning = 1;
      } else {
        no_spin--;
        spin_start = -1; /* this wait does not spin */
      }
    }
    if (spinning) {
      if (now - spin_start < (int64_t)t->spin_us) continue;
      t->spins_missed++;
      spinning = 0;
      no_spin = SPIN_BACKOFF;
    }
    struct pollfd fds[2] = {{.fd = t->sock, .events = POLLIN}, {.fd = t->cancel_fd, .events = POLLIN}};
    int64_t wait_ms = (l.deadline - now + 999) / 1000;
    (void)poll(fds, 2, (int)(wait_ms > 60000 ? 60000 : wait_ms));
  }
out:
  t->in_oack = l.in_oack;
  t->acked = l.base;
  free(l.slots);
  free(l.lens);
}

static void *thread_main(void *arg) {
  transfer_t *t = arg;
  run_transfer(t);
  close(t->sock);
  pthread_mutex_lock(&t->mu);
  t->finished = 1;
  close(t->cancel_fd);
  t->cancel_fd = -1;
  pthread_mutex_unlock(&t->mu);
  if (napi_call_threadsafe_function(t->tsfn, t, napi_tsfn_blocking) != napi_ok) transfer_unref(t);
  napi_release_threadsafe_function(t->tsfn, napi_tsfn_release);
  return NULL;
}

/* ---- JS side ---- */

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      const napi_extended_error_info *info = NULL;                              \
      napi_get_last_error_info((env), &info);                                   \
      bool pending = false;                                                     \
      napi_is_exception_pending((env), &pending);                               \
      if (!pending) napi_throw_error((env), NULL, info && info->error_message ? info->error_message : #call); \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

static void set_num(napi_env env, napi_value obj, const char *key, double v) {
  napi_value x;
  if (napi_create_double(env, v, &x) == napi_ok) napi_set_named_property(env, obj, key, x);
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *s) {
  napi_value x;
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &x) == napi_ok) napi_set_named_property(env, obj, key, x);
}

/* Runs on the JS thread: hand the result to the callback given to start(). */
static void deliver(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  transfer_t *t = data;
  if (env != NULL && cb != NULL) {
    napi_value r, undef;
    napi_create_object(env, &r);
    set_str(env, r, "outcome", outcome_names[t->outcome]);
    set_num(env, r, "ackedBlocks", (double)t->acked);
    set_num(env, r, "retransmits", (double)t->retransmits);
    set_num(env, r, "duplicateAcks", (double)t->duplicate_acks);
    set_num(env, r, "packetsSent", (double)t->packets_sent);
    set_num(env, r, "malformed", (double)t->malformed);
    set_num(env, r, "spinsCaught", (double)t->spins_caught);
    set_num(env, r, "spinsMissed", (double)t->spins_missed);
    napi_value b;
    napi_get_boolean(env, t->in_oack, &b);
    napi_set_named_property(env, r, "inOack", b);
    if (t->outcome == OUT_CLIENT_ERROR) {
      set_num(env, r, "clientCode", t->client_code);
      set_str(env, r, "clientMessage", t->client_msg);
    }
    if (t->outcome == OUT_SOCKET_ERROR || t->outcome == OUT_READ_ERROR) set_num(env, r, "errno", t->sys_errno);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 1, &r, NULL);
  }
  transfer_unref(t);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  transfer_unref(data);
}

static int get_u32(napi_env env, napi_value obj, const char *key, uint32_t min, uint32_t max, uint32_t *out) {
  napi_value v;
  double d;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok || d != d ||
      d < min || d > max || d != (double)(uint32_t)d) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be an integer in %u..%u", key, min, max);
    napi_throw_range_error(env, NULL, msg);
    return -1;
  }
  *out = (uint32_t)d;
  return 0;
}

static int get_ipv4(napi_env env, napi_value obj, const char *key, struct in_addr *out) {
  napi_value v;
  char s[64];
  size_t len;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_get_value_string_utf8(env, v, s, sizeof s, &len) != napi_ok ||
      inet_pton(AF_INET, s, out) != 1) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be an IPv4 address", key);
    napi_throw_type_error(env, NULL, msg);
    return -1;
  }
  return 0;
}

/* Also used by dhcp_io.c: an Error "what: strerror" with its errno. */
void throw_errno(napi_env env, const char *what, int err);
void throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, e, c;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &c);
  napi_set_named_property(env, e, "errno", c);
  napi_throw(env, e);
}

/*
 * start({ address, clientAddress, clientPort, fileFd, size, blksize, windowsize, timeoutMs, retries,
 *         spinUs, oack: Buffer | null }, onDone(result)) -> handle
 * Creates, binds and connects the transfer socket (throws on failure, nothing left open), then runs the
 * transfer on a new thread. The file descriptor must stay open until onDone has been called.
 */
static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t0, t1;
  if (argc < 2 || napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[1], &t1) != napi_ok || t0 != napi_object ||
      t1 != napi_function) {
    napi_throw_type_error(env, NULL, "start(options, onDone) expects an object and a function");
    return NULL;
  }
  napi_value o = argv[0];
  struct in_addr local, peer;
  uint32_t port, fd, blksize, windowsize, timeout_ms, retries, spin_us;
  double size;
  napi_value v;
  if (get_ipv4(env, o, "address", &local) || get_ipv4(env, o, "clientAddress", &peer) || get_u32(env, o, "clientPort", 1, 65535, &port) ||
      get_u32(env, o, "fileFd", 0, INT32_MAX, &fd) || get_u32(env, o, "blksize", 8, 65464, &blksize) ||
      get_u32(env, o, "windowsize", 1, 65535, &windowsize) || get_u32(env, o, "timeoutMs", 1, 255000, &timeout_ms) ||
      get_u32(env, o, "retries", 0, 1000, &retries) || get_u32(env, o, "spinUs", 0, 1000000, &spin_us))
    return NULL;
  CHECK(env, napi_get_named_property(env, o, "size", &v));
  if (napi_get_value_double(env, v, &size) != napi_ok || !(size >= 0) || size > 9007199254740991.0 || size != (double)(uint64_t)size) {
    napi_throw_range_error(env, NULL, "size must be a non-negative safe integer");
    return NULL;
  }
  uint8_t *oack = NULL;
  size_t oack_len = 0;
  CHECK(env, napi_get_named_property(env, o, "oack", &v));
  bool is_buf = false;
  napi_is_buffer(env, v, &is_buf);
  if (is_buf) {
    void *data;
    CHECK(env, napi_get_buffer_info(env, v, &data, &oack_len));
    if (oack_len < 2 || oack_len > 65535) {
      napi_throw_range_error(env, NULL, "oack must be a TFTP packet");
      return NULL;
    }
    oack = malloc(oack_len);
    if (!oack) {
      napi_throw_error(env, NULL, "out of memory");
      return NULL;
    }
    memcpy(oack, data, oack_len);
  }

  transfer_t *t = calloc(1, sizeof *t);
  if (!t) {
    free(oack);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  t->sock = t->cancel_fd = -1;
  t->file_fd = (int)fd;
  t->size = (uint64_t)size;
  t->blksize = blksize;
  t->windowsize = windowsize;
  t->timeout_ms = timeout_ms;
  t->retries = retries;
  t->spin_us = spin_us;
  t->oack = oack;
  t->oack_len = oack_len;
  pthread_mutex_init(&t->mu, NULL);
  atomic_init(&t->refs, 1);

  const char *failed = NULL;
  int err = 0;
  struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr = local, .sin_port = 0};
  struct sockaddr_in pa = {.sin_family = AF_INET, .sin_addr = peer, .sin_port = htons((uint16_t)port)};
  t->sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (t->sock < 0) failed = "socket";
  else if (bind(t->sock, (struct sockaddr *)&la, sizeof la) < 0) failed = "bind";
  else if (connect(t->sock, (struct sockaddr *)&pa, sizeof pa) < 0) failed = "connect";
  else if ((t->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) failed = "eventfd";
  if (failed) {
    err = errno;
    goto fail;
  }
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "underlay-tftp-transfer", NAPI_AUTO_LENGTH, &name));
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, deliver, &t->tsfn) != napi_ok) {
    failed = "threadsafe function";
    err = ENOMEM;
    goto fail;
  }
  napi_value handle;
  if (napi_create_external(env, t, finalize_handle, NULL, &handle) != napi_ok) {
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    failed = "external";
    err = ENOMEM;
    goto fail;
  }
  /* From here the handle owns one reference (its finalizer drops it); the thread takes another. */
  atomic_fetch_add(&t->refs, 1);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t th;
  err = pthread_create(&th, &attr, thread_main, t);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    napi_release_threadsafe_function(t->tsfn, napi_tsfn_abort);
    close(t->sock);
    close(t->cancel_fd);
    t->sock = t->cancel_fd = -1;
    t->finished = 1;
    atomic_fetch_sub(&t->refs, 1); /* the thread's */
    throw_errno(env, "pthread_create", err);
    return NULL;
  }
  return handle;

fail:
  if (t->sock >= 0) close(t->sock);
  if (t->cancel_fd >= 0) close(t->cancel_fd);
  transfer_unref(t);
  throw_errno(env, failed, err);
  return NULL;
}

/* cancel(handle, notifyClient): ask a running transfer to stop; no-op once it has finished. */
static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "cancel(handle, notify) expects a transfer handle");
    return NULL;
  }
  bool notify = false;
  if (argc > 1) napi_get_value_bool(env, argv[1], &notify);
  transfer_t *t = data;
  pthread_mutex_lock(&t->mu);
  if (!t->finished) {
    atomic_store(&t->cancel_notify, notify ? 1 : 0);
    atomic_store(&t->cancelled, 1);
    uint64_t one = 1;
    (void)!write(t->cancel_fd, &one, sizeof one);
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

/* file_send.c: sendFile / cancelSend / cork (HTTP file bodies with sendfile(2) off the event loop). */
int register_file_send(napi_env env, napi_value exports);
/* dhcp_io.c: udpOpen / udpSend / udpClose (the DHCP server's sockets, read and written in batches). */
int register_dhcp_io(napi_env env, napi_value exports);

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"start", NULL, start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof *props, props) != napi_ok) return NULL;
  if (register_file_send(env, exports) != 0) return NULL;
  if (register_dhcp_io(env, exports) != 0) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
