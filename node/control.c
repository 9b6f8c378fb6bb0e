/* node/control.c - see control.h. */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_QUEUE 256 /* complete lines waiting for the loop thread */
#define CTL_ERR_SNIPPET 80

/* A line source: stdin (id 0) or an API client. in/in_len belong to the I/O
 * thread; out/out_len/dead/bye are shared with the loop thread (under mu). */
typedef struct ctl_src {
  int fd;
  uint64_t id;
  char *in;
  size_t in_len;
  int skipping; /* stdin: discarding the rest of an over-long line */
  int eof;      /* no more input (the client may still read) */
  int closing;  /* over-long line: waiting for `bye`, then the flush, then close */
  int bye;      /* the dispatcher has seen the error entry */
  int dead;     /* close now */
  char *out;
  size_t out_len, out_cap;
} ctl_src;

typedef struct ctl_entry {
  uint64_t origin;
  char *line;
  int too_long;
} ctl_entry;

static struct {
  pthread_mutex_t mu;
  pthread_t thread;
  int running, stopping, wake[2];
  lp2p_swarm *sw;
  ctl_dispatch_fn fn;
  void *ud;
  int drain_posted;
  /* queue: at most CTL_QUEUE lines, plus one error entry per source */
  ctl_entry q[CTL_QUEUE + CTL_MAX_CLIENTS + 1];
  size_t head, len;
  /* sources */
  int use_stdin;
  ctl_src in0;
  ctl_src *clients[CTL_MAX_CLIENTS];
  size_t n_clients;
  uint64_t next_id;
  /* API socket */
  int lfd;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  dev_t dev;
  ino_t ino;
} ctl = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}, .lfd = -1, .next_id = 1};

#define QCAP (sizeof ctl.q / sizeof *ctl.q)

static void wake_io(void) {
  if (ctl.wake[1] >= 0) {
    ssize_t w = write(ctl.wake[1], "w", 1); /* non-blocking: a full pipe already wakes */
    (void)w;
  }
}

/* ------------------------------------------------------------------------- */
/* API socket */

int ctl_api_enabled(void) { return ctl.lfd >= 0; }

int ctl_api_open(const char *path, char *err, size_t cap) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (!*path || strlen(path) >= sizeof sa.sun_path) {
    snprintf(err, cap, "--api path '%s' is empty or longer than %zu bytes", path, sizeof sa.sun_path - 1);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path));
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, cap, "--api %s exists and is not a socket", path);
      return -1;
    }
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      snprintf(err, cap, "--api %s: socket: %s", path, strerror(errno));
      return -1;
    }
    int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(probe);
    if (live) {
      snprintf(err, cap, "--api %s is in use by a running node", path);
      return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) { /* stale, from a node that crashed */
      snprintf(err, cap, "--api %s: cannot remove the stale socket: %s", path, strerror(errno));
      return -1;
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(err, cap, "--api %s: socket: %s", path, strerror(errno));
    return -1;
  }
  mode_t old = umask(0177); /* created 0600: no window with a wider mode */
  int rv = bind(fd, (struct sockaddr *)&sa, sizeof sa);
  int e = errno;
  umask(old);
  if (rv < 0 || chmod(path, 0600) < 0 || listen(fd, 16) < 0 || stat(path, &st) < 0) {
    if (rv == 0) e = errno;
    snprintf(err, cap, "--api %s: %s", path, strerror(e));
    if (rv == 0) unlink(path);
    close(fd);
    return -1;
  }
  ctl.lfd = fd;
  memcpy(ctl.path, path, strlen(path) + 1);
  ctl.dev = st.st_dev;
  ctl.ino = st.st_ino;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* queue: I/O thread -> loop thread */

static void drain(lp2p_swarm *sw, void *arg) {
  (void)sw;
  (void)arg;
  pthread_mutex_lock(&ctl.mu);
  ctl.drain_posted = 0;
  pthread_mutex_unlock(&ctl.mu);
  int took = 0;
  for (;;) {
    pthread_mutex_lock(&ctl.mu);
    ctl_entry e = {0};
    int have = ctl.len > 0;
    if (have) {
      e = ctl.q[ctl.head];
      ctl.head = (ctl.head + 1) % QCAP;
      ctl.len--;
    }
    pthread_mutex_unlock(&ctl.mu);
    if (!have) break;
    took = 1;
    ctl.fn(ctl.ud, e.origin, e.line, e.too_long ? "line too long (limit 65536 bytes): client dropped" : NULL);
    free(e.line);
    if (e.too_long && e.origin) {
      pthread_mutex_lock(&ctl.mu);
      for (size_t i = 0; i < ctl.n_clients; i++)
        if (ctl.clients[i]->id == e.origin) ctl.clients[i]->bye = 1;
      pthread_mutex_unlock(&ctl.mu);
    }
  }
  if (took) wake_io(); /* room again, and maybe a client to close */
}

/* Caller holds mu. Normal lines only while fewer than CTL_QUEUE wait. */
static int queue_room(void) { return ctl.len < CTL_QUEUE; }

static void push_locked(uint64_t origin, char *line, int too_long) {
  ctl.q[(ctl.head + ctl.len++) % QCAP] = (ctl_entry){origin, line, too_long};
  if (!ctl.drain_posted && lp2p_swarm_post(ctl.sw, drain, NULL) == 0) ctl.drain_posted = 1;
}

/* Moves complete lines of s into the queue while there is room. */
static void take_lines(ctl_src *s) {
  for (;;) {
    if (!s->in_len || s->closing) return;
    char *nl = memchr(s->in, '\n', s->in_len);
    if (!nl) {
      if (s->in_len < CTL_LINE_MAX) return;
      /* over-long line */
      char *snip = malloc(CTL_ERR_SNIPPET + 1);
      if (snip) {
        memcpy(snip, s->in, CTL_ERR_SNIPPET);
        snip[CTL_ERR_SNIPPET] = 0;
      }
      pthread_mutex_lock(&ctl.mu);
      if (snip) push_locked(s->id, snip, 1);
      if (s->id) {
        s->closing = 1;
        if (!snip) s->dead = 1;
      }
      pthread_mutex_unlock(&ctl.mu);
      s->in_len = 0;
      if (!s->id) s->skipping = 1; /* stdin: drop up to the next newline */
      return;
    }
    size_t l = (size_t)(nl - s->in);
    pthread_mutex_lock(&ctl.mu);
    int room = queue_room();
    pthread_mutex_unlock(&ctl.mu);
    if (!room) return;
    char *line = NULL;
    if (s->skipping) {
      s->skipping = 0;
    } else {
      line = malloc(l + 1);
      if (line) {
        memcpy(line, s->in, l);
        line[l] = 0;
        if (l && line[l - 1] == '\r') line[l - 1] = 0;
      }
    }
    memmove(s->in, nl + 1, s->in_len - l - 1);
    s->in_len -= l + 1;
    if (line) {
      pthread_mutex_lock(&ctl.mu);
      push_locked(s->id, line, 0);
      pthread_mutex_unlock(&ctl.mu);
    }
  }
}

/* Reads what is there; returns 0, or -1 at end of input / error. */
static int read_src(ctl_src *s) {
  if (!s->in && !(s->in = malloc(CTL_LINE_MAX))) return -1;
  if (s->in_len == CTL_LINE_MAX) return 0; /* full: take_lines decides */
  ssize_t k = read(s->fd, s->in + s->in_len, CTL_LINE_MAX - s->in_len);
  if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
  if (k <= 0) return -1;
  if (s->skipping) { /* stdin after an over-long line: up to the newline */
    char *nl = memchr(s->in, '\n', (size_t)k);
    if (!nl) return 0;
    s->skipping = 0;
    size_t rest = (size_t)k - (size_t)(nl + 1 - s->in);
    memmove(s->in, nl + 1, rest);
    s->in_len = rest;
    return 0;
  }
  s->in_len += (size_t)k;
  return 0;
}

/* ------------------------------------------------------------------------- */
/* output: loop thread -> clients */

void ctl_send(uint64_t to, const char *line, size_t len) {
  int any = 0;
  pthread_mutex_lock(&ctl.mu);
  for (size_t i = 0; i < ctl.n_clients; i++) {
    ctl_src *c = ctl.clients[i];
    if ((to && c->id != to) || c->dead) continue;
    if (c->out_len + len > CTL_OUT_MAX) {
      c->dead = 1; /* does not read its events: dropped */
      any = 1;
      continue;
    }
    if (c->out_len + len > c->out_cap) {
      size_t cap = c->out_cap ? c->out_cap : 4096;
      while (cap < c->out_len + len) cap *= 2;
      char *p = realloc(c->out, cap);
      if (!p) {
        c->dead = 1;
        any = 1;
        continue;
      }
      c->out = p;
      c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, line, len);
    c->out_len += len;
    any = 1;
  }
  pthread_mutex_unlock(&ctl.mu);
  if (any) wake_io();
}

/* Caller holds mu. */
static void flush_locked(ctl_src *c) {
  while (c->out_len && !c->dead) {
    ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (w <= 0) {
      c->dead = 1;
      return;
    }
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
  }
}

/* ------------------------------------------------------------------------- */
/* the I/O thread */

static void src_free(ctl_src *c) {
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

/* Returns 1 when accepting must pause (out of descriptors or memory: the
 * pending connection would wake poll at once, forever). */
static int accept_clients(void) {
  for (;;) {
    int fd = accept4(ctl.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM;
    ctl_src *c = NULL;
    pthread_mutex_lock(&ctl.mu);
    if (ctl.n_clients < CTL_MAX_CLIENTS && (c = calloc(1, sizeof *c))) {
      c->fd = fd;
      c->id = ctl.next_id++;
      ctl.clients[ctl.n_clients++] = c;
    }
    pthread_mutex_unlock(&ctl.mu);
    if (!c) {
      static const char full[] =
          "{\"event\":\"control-error\",\"line\":\"\",\"message\":\"too many API clients\"}\n";
      ssize_t w = send(fd, full, sizeof full - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)w;
      close(fd);
    }
  }
  return 0;
}

static void *io_main(void *arg) {
  (void)arg;
  struct pollfd fds[3 + CTL_MAX_CLIENTS];
  ctl_src *who[3 + CTL_MAX_CLIENTS];
  int accept_paused = 0;
  for (;;) {
    size_t nf = 0;
    pthread_mutex_lock(&ctl.mu);
    if (ctl.stopping) {
      pthread_mutex_unlock(&ctl.mu);
      break;
    }
    int room = queue_room();
    fds[nf] = (struct pollfd){.fd = ctl.wake[0], .events = POLLIN};
    who[nf++] = NULL;
    if (ctl.lfd >= 0 && !accept_paused) {
      fds[nf] = (struct pollfd){.fd = ctl.lfd, .events = POLLIN};
      who[nf++] = NULL;
    }
    if (ctl.use_stdin && !ctl.in0.eof && room) {
      fds[nf] = (struct pollfd){.fd = 0, .events = POLLIN};
      who[nf++] = &ctl.in0;
    }
    for (size_t i = 0; i < ctl.n_clients; i++) {
      ctl_src *c = ctl.clients[i];
      short ev = (short)((!c->eof && !c->closing && room ? POLLIN : 0) | (c->out_len ? POLLOUT : 0));
      fds[nf] = (struct pollfd){.fd = c->fd, .events = ev};
      who[nf++] = c;
    }
    pthread_mutex_unlock(&ctl.mu);

    int rv = poll(fds, nf, accept_paused ? 100 : -1);
    accept_paused = 0;
    if (rv < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < nf; i++) {
      if (!fds[i].revents) continue;
      ctl_src *s = who[i];
      if (fds[i].fd == ctl.wake[0] && !s) {
        char b[64];
        while (read(ctl.wake[0], b, sizeof b) > 0) {
        }
        continue;
      }
      if (fds[i].fd == ctl.lfd && !s) {
        accept_paused = accept_clients();
        continue;
      }
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        if ((fds[i].events & POLLIN) || s == &ctl.in0) {
          if (read_src(s) < 0) s->eof = 1; /* a partial line is dropped */
        }
        /* a client that hung up (both directions) is gone; one that only
         * closed its writing side still gets its events */
        if (s != &ctl.in0 && (fds[i].revents & (POLLHUP | POLLERR)) && !(fds[i].revents & POLLIN)) {
          pthread_mutex_lock(&ctl.mu);
          s->dead = 1;
          pthread_mutex_unlock(&ctl.mu);
        }
      }
      if (s != &ctl.in0 && (fds[i].revents & POLLOUT)) {
        pthread_mutex_lock(&ctl.mu);
        flush_locked(s);
        pthread_mutex_unlock(&ctl.mu);
      }
    }
    /* complete lines of every source (also after a wake-up: room again) */
    if (ctl.use_stdin) take_lines(&ctl.in0);
    for (size_t i = 0; i < ctl.n_clients; i++) take_lines(ctl.clients[i]);
    /* drop the clients that are done */
    pthread_mutex_lock(&ctl.mu);
    for (size_t i = 0; i < ctl.n_clients;) {
      ctl_src *c = ctl.clients[i];
      if (c->closing && c->bye) flush_locked(c);
      int gone = c->dead || (c->closing && c->bye && !c->out_len);
      if (!gone) {
        i++;
        continue;
      }
      ctl.clients[i] = ctl.clients[--ctl.n_clients];
      src_free(c);
    }
    pthread_mutex_unlock(&ctl.mu);
  }
  return NULL;
}

int ctl_start(lp2p_swarm *sw, int use_stdin, ctl_dispatch_fn fn, void *ud) {
  ctl.sw = sw;
  ctl.fn = fn;
  ctl.ud = ud;
  ctl.use_stdin = use_stdin;
  ctl.in0.fd = 0;
  if (pipe2(ctl.wake, O_CLOEXEC | O_NONBLOCK)) return -1;
  if (pthread_create(&ctl.thread, NULL, io_main, NULL)) return -1;
  ctl.running = 1;
  return 0;
}

void ctl_stop(void) {
  if (ctl.running) {
    pthread_mutex_lock(&ctl.mu);
    ctl.stopping = 1;
    pthread_mutex_unlock(&ctl.mu);
    wake_io();
    pthread_join(ctl.thread, NULL);
    ctl.running = 0;
  }
  for (int i = 0; i < 2; i++) {
    if (ctl.wake[i] >= 0) close(ctl.wake[i]);
    ctl.wake[i] = -1;
  }
  pthread_mutex_lock(&ctl.mu);
  for (size_t i = 0; i < ctl.n_clients; i++) {
    flush_locked(ctl.clients[i]); /* last events, if the client can take them now */
    src_free(ctl.clients[i]);
  }
  ctl.n_clients = 0;
  /* lines queued but not run (the swarm drops posted work at free) */
  while (ctl.len) {
    free(ctl.q[ctl.head].line);
    ctl.head = (ctl.head + 1) % QCAP;
    ctl.len--;
  }
  pthread_mutex_unlock(&ctl.mu);
  free(ctl.in0.in);
  ctl.in0.in = NULL;
  if (ctl.lfd >= 0) {
    close(ctl.lfd);
    ctl.lfd = -1;
    struct stat st; /* remove the socket file only if it is still ours */
    if (lstat(ctl.path, &st) == 0 && st.st_dev == ctl.dev && st.st_ino == ctl.ino) unlink(ctl.path);
  }
}
