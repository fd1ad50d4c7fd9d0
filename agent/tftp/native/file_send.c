/*
 * Underlay agent: HTTP file bodies sent with sendfile(2) off the event loop (part of the agent's addon).
 *
 * JS parses the request, checks the path, opens the file, writes the response head through Node and
 * then hands over the connected TCP socket's descriptor, the file's descriptor and a byte range:
 * sendFile({ socketFd, fileFd, start, end, idleMs }, onDone) -> handle. Both descriptors are checked (a
 * connected, non-blocking stream socket; a regular file holding the range) and dup()ed at once, so the
 * job never touches a descriptor number JS may close and the kernel may reuse; a foreign or closed
 * descriptor is refused with an exception and nothing started. JS may close its file at once.
 *
 * The copies run on SENDERS sender threads (jobs assigned round-robin), each an epoll loop over its
 * jobs' sockets: a writable socket gets sendfile() calls until the socket buffer is full (EAGAIN) or
 * the job's per-turn budget is spent, so one fast client cannot starve the others. A job ends
 * "complete" (every byte handed to the kernel), "socket-error" (the client went away: EPIPE,
 * ECONNRESET...), "read-error" (the file shrank or could not be read), "timeout" (no byte accepted by
 * the socket for idleMs) or "cancelled" (cancelSend(handle), e.g. the response was closed). The result
 * ({ outcome, bytes, errno? }) reaches JS through a thread-safe function. At the end the job clears
 * TCP_CORK on the socket (JS may set it around the head, see cork()) so the body's tail is not held.
 * The sender threads run at nice SENDER_NICE, so a host short of CPU serves DHCP before image bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { SENDERS = 2 };
/* Nice value of the sender threads (Linux: per thread): when the host is short of CPU, the event loop
 * (DHCP answers, TFTP, boot scripts) runs before image bodies. A failure to lower it is harmless. */
enum { SENDER_NICE = 10 };
/* Bytes one job may send per turn of its sender's loop before the next ready socket's turn. */
static const size_t TURN_BUDGET = 4u << 20;
/* Largest single sendfile() call (the kernel caps it at 2 GiB anyway). */
static const size_t CALL_MAX = 1u << 20;

enum fs_outcome { FS_COMPLETE, FS_SOCKET_ERROR, FS_READ_ERROR, FS_TIMEOUT, FS_CANCELLED };
static const char *const fs_outcome_names[] = {"complete", "socket-error", "read-error", "timeout", "cancelled"};

typedef struct job {
  int sock, file;
  uint64_t pos, end, sent;
  int64_t idle_us, last_progress;
  napi_threadsafe_function tsfn;
  atomic_int cancelled;
  atomic_int finished;
  atomic_int refs; /* the JS handle (finalizer) and the sender (until delivery) */
  struct sender *owner;
  struct job *next_new;       /* the sender's incoming queue */
  struct job *prev, *next;    /* the sender's active list */
  enum fs_outcome outcome;
  int sys_errno;
} job_t;

typedef struct sender {
  pthread_mutex_t mu;
  job_t *incoming; /* under mu */
  int wake_fd;     /* eventfd: new jobs, cancellations */
  int ep;
  job_t *active;   /* sender thread only */
  int started;
} sender_t;

static sender_t senders[SENDERS];
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint next_sender;

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void job_unref(job_t *j) {
  if (atomic_fetch_sub(&j->refs, 1) == 1) free(j);
}

static void finish(sender_t *s, job_t *j, enum fs_outcome o, int err) {
  j->outcome = o;
  j->sys_errno = err;
  epoll_ctl(s->ep, EPOLL_CTL_DEL, j->sock, NULL);
  if (o == FS_COMPLETE) {
    int off = 0;
    (void)setsockopt(j->sock, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
  }
  close(j->sock);
  close(j->file);
  if (j->prev) j->prev->next = j->next;
  else s->active = j->next;
  if (j->next) j->next->prev = j->prev;
  atomic_store(&j->finished, 1);
  if (napi_call_threadsafe_function(j->tsfn, j, napi_tsfn_blocking) != napi_ok) job_unref(j);
  napi_release_threadsafe_function(j->tsfn, napi_tsfn_release);
}

/* Send while the socket takes bytes and the turn's budget lasts; ends the job when done or failed. */
static void pump(sender_t *s, job_t *j, int64_t now) {
  size_t budget = TURN_BUDGET;
  while (j->pos < j->end && budget > 0) {
    uint64_t left = j->end - j->pos;
    size_t want = left < CALL_MAX ? (size_t)left : CALL_MAX;
    off_t off = (off_t)j->pos;
    ssize_t n = sendfile(j->sock, j->file, &off, want);
    if (n > 0) {
      j->pos += (uint64_t)n;
      j->sent += (uint64_t)n;
      j->last_progress = now;
      budget = (size_t)n >= budget ? 0 : budget - (size_t)n;
      continue;
    }
    if (n == 0) return finish(s, j, FS_READ_ERROR, 0); /* the file ended before the range did */
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    /* EPIPE, ECONNRESET...: the client went away. EIO, EOVERFLOW... on the file side: a read error. */
    int e = errno;
    return finish(s, j, (e == EIO || e == EOVERFLOW || e == EINVAL) ? FS_READ_ERROR : FS_SOCKET_ERROR, e);
  }
  if (j->pos >= j->end) finish(s, j, FS_COMPLETE, 0);
}

static void take_incoming(sender_t *s, int64_t now) {
  pthread_mutex_lock(&s->mu);
  job_t *list = s->incoming;
  s->incoming = NULL;
  pthread_mutex_unlock(&s->mu);
  while (list) {
    job_t *j = list;
    list = j->next_new;
    j->last_progress = now;
    j->prev = NULL;
    j->next = s->active;
    if (s->active) s->active->prev = j;
    s->active = j;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = j};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, j->sock, &ev) != 0) finish(s, j, FS_SOCKET_ERROR, errno);
  }
}

static void *sender_main(void *arg) {
  sender_t *s = arg;
  struct epoll_event evs[64];
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), SENDER_NICE);
  for (;;) {
    int64_t now = mono_us();
    /* Sleep until the nearest idle deadline (at most a second: deadlines are checked then). */
    int64_t wait_us = 1000000;
    for (job_t *j = s->active; j; j = j->next) {
      int64_t left = j->last_progress + j->idle_us - now;
      if (left < wait_us) wait_us = left < 0 ? 0 : left;
    }
    int n = epoll_wait(s->ep, evs, 64, (int)((wait_us + 999) / 1000));
    now = mono_us();
    int woken = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) {
        woken = 1;
        continue;
      }
      job_t *j = evs[i].data.ptr;
      if (!atomic_load(&j->cancelled)) pump(s, j, now);
    }
    if (woken) {
      uint64_t v;
      (void)!read(s->wake_fd, &v, sizeof v);
      take_incoming(s, now);
    }
    /* Cancellations and stalls (a job finished above is no longer on the list). */
    for (job_t *j = s->active, *next; j; j = next) {
      next = j->next;
      if (atomic_load(&j->cancelled)) finish(s, j, FS_CANCELLED, 0);
      else if (now - j->last_progress >= j->idle_us) finish(s, j, FS_TIMEOUT, 0);
    }
  }
  return NULL;
}

/* Starts the sender threads once; 0 or an errno. */
static int start_senders(void) {
  int err = 0;
  pthread_mutex_lock(&init_mu);
  for (int i = 0; i < SENDERS && !err; i++) {
    sender_t *s = &senders[i];
    if (s->started) continue;
    pthread_mutex_init(&s->mu, NULL);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->wake_fd < 0 || s->ep < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, s->wake_fd, &ev) != 0) err = errno;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t th;
    if (!err) err = pthread_create(&th, &attr, sender_main, s);
    pthread_attr_destroy(&attr);
    if (err) {
      if (s->wake_fd >= 0) close(s->wake_fd);
      if (s->ep >= 0) close(s->ep);
      pthread_mutex_destroy(&s->mu);
    } else {
      s->started = 1;
    }
  }
  pthread_mutex_unlock(&init_mu);
  return err;
}

static void wake(sender_t *s) {
  uint64_t one = 1;
  (void)!write(s->wake_fd, &one, sizeof one);
}

/* ---- JS side ---- */

static void fs_throw(napi_env env, const char *code, const char *msg, int err) {
  char text[200];
  if (err) snprintf(text, sizeof text, "%s: %s", msg, strerror(err));
  else snprintf(text, sizeof text, "%s", msg);
  napi_value m, e, c;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
  napi_create_error(env, c, m, &e);
  if (err) {
    napi_value n;
    napi_create_int32(env, err, &n);
    napi_set_named_property(env, e, "errno", n);
  }
  napi_throw(env, e);
}

static int get_int(napi_env env, napi_value o, const char *key, double min, double max, double *out) {
  napi_value v;
  double d;
  if (napi_get_named_property(env, o, key, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok || d != d || d < min ||
      d > max || d != (double)(int64_t)d) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be an integer in %.0f..%.0f", key, min, max);
    napi_throw_range_error(env, NULL, msg);
    return -1;
  }
  *out = d;
  return 0;
}

/* The socket JS hands over: a connected, non-blocking stream socket (not a listener). 0 or throws. */
static int check_socket(napi_env env, int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return fs_throw(env, "ERR_FILE_SEND_SOCKET", "socketFd is not an open descriptor", errno), -1;
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return fs_throw(env, "ERR_FILE_SEND_SOCKET", "socketFd is not a stream socket", 0), -1;
  len = sizeof listening;
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening || getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
    return fs_throw(env, "ERR_FILE_SEND_SOCKET", "socketFd is not a connected socket", 0), -1;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || !(fl & O_NONBLOCK)) return fs_throw(env, "ERR_FILE_SEND_SOCKET", "socketFd is not non-blocking", 0), -1;
  return 0;
}

static void fs_deliver(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  job_t *j = data;
  if (env != NULL && cb != NULL) {
    napi_value r, x, undef;
    napi_create_object(env, &r);
    if (napi_create_string_utf8(env, fs_outcome_names[j->outcome], NAPI_AUTO_LENGTH, &x) == napi_ok) napi_set_named_property(env, r, "outcome", x);
    if (napi_create_double(env, (double)j->sent, &x) == napi_ok) napi_set_named_property(env, r, "bytes", x);
    if (j->sys_errno && napi_create_int32(env, j->sys_errno, &x) == napi_ok) napi_set_named_property(env, r, "errno", x);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 1, &r, NULL);
  }
  job_unref(j);
}

static void fs_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  job_unref(data);
}

/*
 * sendFile({ socketFd, fileFd, start, end, idleMs }, onDone({ outcome, bytes, errno? })) -> handle
 * Throws (nothing started, nothing left open) on bad arguments or refused descriptors.
 */
static napi_value send_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype t0 = napi_undefined, t1 = napi_undefined;
  if (argc >= 2) {
    napi_typeof(env, argv[0], &t0);
    napi_typeof(env, argv[1], &t1);
  }
  if (t0 != napi_object || t1 != napi_function) {
    napi_throw_type_error(env, NULL, "sendFile(options, onDone) expects an object and a function");
    return NULL;
  }
  double sock, file, start, end, idle_ms;
  if (get_int(env, argv[0], "socketFd", 0, INT32_MAX, &sock) || get_int(env, argv[0], "fileFd", 0, INT32_MAX, &file) ||
      get_int(env, argv[0], "start", 0, 9007199254740991.0, &start) || get_int(env, argv[0], "end", 0, 9007199254740991.0, &end) ||
      get_int(env, argv[0], "idleMs", 1, 86400000, &idle_ms))
    return NULL;
  if (end < start) {
    napi_throw_range_error(env, NULL, "end must not be below start");
    return NULL;
  }
  if (check_socket(env, (int)sock)) return NULL;
  struct stat st;
  if (fstat((int)file, &st) != 0) {
    fs_throw(env, "ERR_FILE_SEND_FILE", "fileFd is not an open descriptor", errno);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    fs_throw(env, "ERR_FILE_SEND_FILE", "fileFd is not a regular file", 0);
    return NULL;
  }
  if (end > (double)st.st_size) {
    fs_throw(env, "ERR_FILE_SEND_FILE", "the range ends beyond the file", 0);
    return NULL;
  }
  int err = start_senders();
  if (err) {
    fs_throw(env, "ERR_FILE_SEND_THREAD", "cannot start the sender threads", err);
    return NULL;
  }
  job_t *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  j->sock = fcntl((int)sock, F_DUPFD_CLOEXEC, 0);
  j->file = j->sock < 0 ? -1 : fcntl((int)file, F_DUPFD_CLOEXEC, 0);
  if (j->sock < 0 || j->file < 0) {
    err = errno;
    if (j->sock >= 0) close(j->sock);
    free(j);
    fs_throw(env, "ERR_FILE_SEND_DUP", "dup", err);
    return NULL;
  }
  j->pos = (uint64_t)start;
  j->end = (uint64_t)end;
  j->idle_us = (int64_t)idle_ms * 1000;
  atomic_init(&j->refs, 1);
  napi_value name, handle;
  napi_create_string_utf8(env, "underlay-file-send", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, fs_deliver, &j->tsfn) != napi_ok) goto fail;
  if (napi_create_external(env, j, fs_finalize, NULL, &handle) != napi_ok) {
    napi_release_threadsafe_function(j->tsfn, napi_tsfn_abort);
    goto fail;
  }
  atomic_fetch_add(&j->refs, 1); /* the sender's */
  sender_t *s = &senders[atomic_fetch_add(&next_sender, 1) % SENDERS];
  j->owner = s;
  pthread_mutex_lock(&s->mu);
  j->next_new = s->incoming;
  s->incoming = j;
  pthread_mutex_unlock(&s->mu);
  wake(s);
  return handle;

fail:
  close(j->sock);
  close(j->file);
  free(j);
  napi_throw_error(env, NULL, "cannot create the completion callback");
  return NULL;
}

/* cancelSend(handle): stop a running job (onDone follows with "cancelled"); a no-op once it finished. */
static napi_value cancel_send(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok ||
      data == NULL) {
    napi_throw_type_error(env, NULL, "cancelSend(handle) expects a sendFile handle");
    return NULL;
  }
  job_t *j = data;
  if (!atomic_load(&j->finished)) {
    atomic_store(&j->cancelled, 1);
    wake(j->owner);
  }
  return NULL;
}

/* cork(socketFd, on): set or clear TCP_CORK on a connected stream socket (the head and the body's first bytes share packets). */
static napi_value cork(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  double fd;
  bool on = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "cork(socketFd, on) expects a descriptor and a boolean");
    return NULL;
  }
  napi_value o;
  napi_create_object(env, &o);
  napi_set_named_property(env, o, "socketFd", argv[0]);
  if (get_int(env, o, "socketFd", 0, INT32_MAX, &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "cork(socketFd, on) expects a descriptor and a boolean");
    return NULL;
  }
  if (check_socket(env, (int)fd)) return NULL;
  int v = on ? 1 : 0;
  if (setsockopt((int)fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v) != 0) fs_throw(env, "ERR_FILE_SEND_SOCKET", "TCP_CORK", errno);
  return NULL;
}

int register_file_send(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"sendFile", NULL, send_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cancelSend", NULL, cancel_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cork", NULL, cork, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof *props, props) == napi_ok ? 0 : -1;
}
