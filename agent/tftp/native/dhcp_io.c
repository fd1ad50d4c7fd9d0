/*
 * Underlay agent DHCP: the UDP sockets of the DHCP server, read and written in batches (Node-API addon).
 *
 * node:dgram costs one libuv callback, one 64 KiB allocation, one Buffer and one JS event per datagram
 * received, and one request object, one callback and one syscall per datagram sent. For a server that
 * answers tens of thousands of small datagrams a second on one core, that was half its CPU. Here one
 * socket is watched by a uv_poll_t on the event loop's own thread (no thread, no cross-thread wake-up);
 * when it is readable, one recvmmsg() reads up to `slots` datagrams into the receive buffer JS gave (one
 * slot of `slotSize` bytes each; a longer datagram is cut at slotSize and flagged) and JS is called once
 * with the count. Replies are written by JS into a send buffer and sent with one sendmmsg() per batch.
 *
 * Nothing here looks into a datagram: JS parses and validates everything, exactly as on the dgram path.
 *
 * The socket is blocking (recvmmsg uses MSG_DONTWAIT): a send waits for room in the socket buffer rather
 * than failing, as dgram's queued send would.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

enum { MAX_SLOTS = 256, META_WORDS = 4 };

typedef struct dio {
  uv_poll_t poll;
  int fd;
  int open;
  napi_env env;
  napi_ref cb;
  napi_ref rbuf_ref;
  napi_ref rmeta_ref;
  napi_async_context actx;
  uint8_t *rbuf;
  uint32_t *rmeta;
  uint32_t slot_size, slots;
  struct mmsghdr msgs[MAX_SLOTS];
  struct iovec iov[MAX_SLOTS];
  struct sockaddr_in from[MAX_SLOTS];
} dio_t;

/* data_path.c: throws an Error "what: strerror(err)" carrying `errno`. */
void throw_errno(napi_env env, const char *what, int err);

static int opt_u32(napi_env env, napi_value obj, const char *key, uint32_t min, uint32_t max, uint32_t dflt, uint32_t *out) {
  napi_value v;
  napi_valuetype t;
  double d;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined) {
    *out = dflt;
    return 0;
  }
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d != d || d < min || d > max || d != (double)(uint32_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer in [%u, %u]", key, min, max);
    napi_throw_range_error(env, NULL, msg);
    return -1;
  }
  *out = (uint32_t)d;
  return 0;
}

static int get_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) == napi_ok && is) return napi_get_buffer_info(env, v, data, len) == napi_ok ? 0 : -1;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n, off;
    napi_value ab;
    if (napi_get_typedarray_info(env, v, &type, &n, data, &ab, &off) != napi_ok || type != napi_uint32_array) return -1;
    *len = n * 4;
    return 0;
  }
  return -1;
}

static void on_closed(uv_handle_t *h) {
  dio_t *d = (dio_t *)h;
  free(d);
}

/* Stops watching, closes the socket and lets go of the JS objects; the memory goes once libuv is done. */
static void dio_close(dio_t *d) {
  if (!d->open) return;
  d->open = 0;
  uv_poll_stop(&d->poll);
  close(d->fd);
  d->fd = -1;
  napi_delete_reference(d->env, d->cb);
  napi_delete_reference(d->env, d->rbuf_ref);
  napi_delete_reference(d->env, d->rmeta_ref);
  napi_async_destroy(d->env, d->actx);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  dio_t *d = (dio_t *)h;
  if (!d->open) return;
  int n;
  if (status < 0) {
    n = status; /* a libuv error (negative errno) */
  } else {
    for (uint32_t i = 0; i < d->slots; i++) {
      d->msgs[i].msg_hdr.msg_namelen = sizeof d->from[i];
      d->msgs[i].msg_hdr.msg_flags = 0;
    }
    n = recvmmsg(d->fd, d->msgs, d->slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      n = -errno;
    }
    for (int i = 0; i < n; i++) {
      uint32_t *m = d->rmeta + (size_t)i * META_WORDS;
      m[0] = d->msgs[i].msg_len;
      m[1] = ntohl(d->from[i].sin_addr.s_addr);
      m[2] = ntohs(d->from[i].sin_port);
      m[3] = (d->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? 1 : 0;
    }
  }
  napi_env env = d->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg;
  if (napi_get_reference_value(env, d->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok &&
      napi_create_int32(env, n, &arg) == napi_ok) {
    napi_value result;
    /* make_callback runs the microtasks and process.nextTick queue afterwards, as dgram's callback does. */
    if (napi_make_callback(env, d->actx, recv, cb, 1, &arg, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ex;
        napi_get_and_clear_last_exception(env, &ex);
        napi_fatal_exception(env, ex);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  dio_t *d = data;
  dio_close(d);
  uv_close((uv_handle_t *)&d->poll, on_closed);
}

/*
 * udpOpen({ address, port, broadcast, recvBufferSize, slots, slotSize }, recvBuffer, recvMeta, onBatch): a
 * handle. recvBuffer holds slots × slotSize bytes; recvMeta (Uint32Array) slots × 4 words per datagram:
 * length, source address (host order), source port, 1 when cut at slotSize. onBatch(n): n datagrams
 * were read (n < 0: a socket error, -errno).
 */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  napi_valuetype t0, t3;
  if (argc < 4 || napi_typeof(env, argv[0], &t0) != napi_ok || napi_typeof(env, argv[3], &t3) != napi_ok || t0 != napi_object || t3 != napi_function) {
    napi_throw_type_error(env, NULL, "udpOpen(options, recvBuffer, recvMeta, onBatch) expects an object, a Buffer, a Uint32Array and a function");
    return NULL;
  }
  char addr[32];
  size_t alen = 0;
  napi_value av;
  struct in_addr in;
  if (napi_get_named_property(env, argv[0], "address", &av) != napi_ok || napi_get_value_string_utf8(env, av, addr, sizeof addr, &alen) != napi_ok ||
      inet_pton(AF_INET, addr, &in) != 1) {
    napi_throw_type_error(env, NULL, "address must be an IPv4 address");
    return NULL;
  }
  uint32_t port, broadcast, rcvbuf, slots, slot_size;
  if (opt_u32(env, argv[0], "port", 0, 65535, 0, &port) || opt_u32(env, argv[0], "broadcast", 0, 1, 0, &broadcast) ||
      opt_u32(env, argv[0], "recvBufferSize", 0, 1u << 30, 0, &rcvbuf) || opt_u32(env, argv[0], "slots", 1, MAX_SLOTS, 32, &slots) ||
      opt_u32(env, argv[0], "slotSize", 1, 65536, 4097, &slot_size))
    return NULL;
  void *rbuf, *rmeta;
  size_t rlen, mlen;
  if (get_buffer(env, argv[1], &rbuf, &rlen) || get_buffer(env, argv[2], &rmeta, &mlen) || rlen < (size_t)slots * slot_size ||
      mlen < (size_t)slots * META_WORDS * 4) {
    napi_throw_range_error(env, NULL, "recvBuffer must hold slots × slotSize bytes and recvMeta (Uint32Array) slots × 4 words");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  int one = 1;
  const char *failed = NULL;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = in};
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) failed = "SO_REUSEADDR";
  else if (broadcast && setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0) failed = "SO_BROADCAST";
  else if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) failed = "bind";
  if (failed) {
    int err = errno;
    close(fd);
    throw_errno(env, failed, err);
    return NULL;
  }
  if (rcvbuf > 0) {
    int v = (int)rcvbuf;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v); /* capped at net.core.rmem_max; not fatal */
  }

  dio_t *d = calloc(1, sizeof *d);
  if (!d) {
    close(fd);
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  d->fd = fd;
  d->env = env;
  d->rbuf = rbuf;
  d->rmeta = rmeta;
  d->slots = slots;
  d->slot_size = slot_size;
  for (uint32_t i = 0; i < slots; i++) {
    d->iov[i].iov_base = d->rbuf + (size_t)i * slot_size;
    d->iov[i].iov_len = slot_size;
    d->msgs[i].msg_hdr.msg_iov = &d->iov[i];
    d->msgs[i].msg_hdr.msg_iovlen = 1;
    d->msgs[i].msg_hdr.msg_name = &d->from[i];
  }
  napi_value res_name;
  napi_create_string_utf8(env, "underlay:dhcp-udp", NAPI_AUTO_LENGTH, &res_name);
  if (napi_create_reference(env, argv[3], 1, &d->cb) != napi_ok || napi_create_reference(env, argv[1], 1, &d->rbuf_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &d->rmeta_ref) != napi_ok || napi_async_init(env, NULL, res_name, &d->actx) != napi_ok) {
    close(fd);
    free(d);
    napi_throw_error(env, NULL, "could not keep the callback");
    return NULL;
  }
  int rc = uv_poll_init_socket(loop, &d->poll, fd);
  if (rc == 0) rc = uv_poll_start(&d->poll, UV_READABLE, on_readable);
  if (rc != 0) {
    close(fd);
    napi_delete_reference(env, d->cb);
    napi_delete_reference(env, d->rbuf_ref);
    napi_delete_reference(env, d->rmeta_ref);
    napi_async_destroy(env, d->actx);
    free(d);
    throw_errno(env, "uv_poll", -rc);
    return NULL;
  }
  d->open = 1;
  napi_value handle;
  if (napi_create_external(env, d, finalize_handle, NULL, &handle) != napi_ok) {
    dio_close(d);
    uv_close((uv_handle_t *)&d->poll, on_closed);
    napi_throw_error(env, NULL, "could not create the handle");
    return NULL;
  }
  return handle;
}

static dio_t *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "expected a DHCP socket handle");
    return NULL;
  }
  return data;
}

/*
 * udpSend(handle, sendBuffer, sendMeta, count): sends `count` datagrams with sendmmsg; sendMeta
 * (Uint32Array) holds 4 words per datagram: offset in sendBuffer, length, destination address (host
 * order), destination port. Returns the number not sent; a datagram the kernel refuses is skipped and the
 * first refusal's errno is returned in sendMeta[0] (0 when all went).
 */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "udpSend(handle, sendBuffer, sendMeta, count)");
    return NULL;
  }
  dio_t *d = get_handle(env, argv[0]);
  if (!d) return NULL;
  void *sbuf, *smeta;
  size_t slen, mlen;
  uint32_t count;
  if (get_buffer(env, argv[1], &sbuf, &slen) || get_buffer(env, argv[2], &smeta, &mlen) || napi_get_value_uint32(env, argv[3], &count) != napi_ok ||
      count > MAX_SLOTS || mlen < (size_t)count * META_WORDS * 4) {
    napi_throw_range_error(env, NULL, "udpSend: bad buffers or count");
    return NULL;
  }
  uint32_t *meta = smeta;
  struct mmsghdr msgs[MAX_SLOTS];
  struct iovec iov[MAX_SLOTS];
  struct sockaddr_in to[MAX_SLOTS];
  for (uint32_t i = 0; i < count; i++) {
    uint32_t off = meta[i * META_WORDS], len = meta[i * META_WORDS + 1];
    if ((size_t)off + len > slen) {
      napi_throw_range_error(env, NULL, "udpSend: datagram outside sendBuffer");
      return NULL;
    }
    memset(&to[i], 0, sizeof to[i]);
    to[i].sin_family = AF_INET;
    to[i].sin_addr.s_addr = htonl(meta[i * META_WORDS + 2]);
    to[i].sin_port = htons((uint16_t)meta[i * META_WORDS + 3]);
    iov[i].iov_base = (uint8_t *)sbuf + off;
    iov[i].iov_len = len;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &to[i];
    msgs[i].msg_hdr.msg_namelen = sizeof to[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t done = 0, failed = 0;
  int first_err = 0;
  while (d->open && done < count) {
    int n = sendmmsg(d->fd, msgs + done, count - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (!first_err) first_err = errno;
      done++; /* the datagram at `done` was refused: skip it */
      failed++;
    } else {
      done += (uint32_t)n;
    }
  }
  if (!d->open) failed += count - done;
  meta[0] = (uint32_t)first_err;
  napi_value r;
  napi_create_uint32(env, failed, &r);
  return r;
}

/* udpClose(handle): stop reading and close the socket (idempotent). */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
  dio_t *d = get_handle(env, argv[0]);
  if (d) dio_close(d);
  return NULL;
}

int register_dhcp_io(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpSend", NULL, udp_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpClose", NULL, udp_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof *props, props) == napi_ok ? 0 : -1;
}
