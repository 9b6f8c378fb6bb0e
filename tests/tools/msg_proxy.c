/* tests/tools/msg_proxy.c - a small userspace TCP proxy for the messaging tests and benchmarks: adds a
 * fixed one-way delay to every byte in both directions and can cut every connection periodically.
 *
 *   msg_proxy --listen PORT --target [HOST:]PORT [--delay-ms N] [--cut-every-ms N] [--cut-jitter-ms N]
 *             [--rate BYTES_PER_S] [--bind ADDR] [--log-cuts 1]
 *
 * Prints the port it listens on (one line, useful with --listen 0) on stdout, then serves until killed.
 * Cuts close both sockets of every proxied connection with an RST (SO_LINGER 0); the next cut comes
 * cut-every-ms plus a random 0..cut-jitter-ms later. SIGUSR1 stops the cuts for good (the delay stays):
 * the end of a bounded chaos phase. With --log-cuts 1, every cut prints a line "cut N conns C" (N counts
 * the cuts, C the connections closed) and SIGUSR1 prints "calm cuts N" (stdout, flushed).
 * --rate makes each direction of each connection a link of that many bytes/s: bytes leave in arrival order
 * once the link is free, then take the delay (a bottleneck with a queue of a quarter second's worth).
 * Backpressure: a side whose queue holds more than 4 MiB (with --rate: the queue's size) is not read
 * until it drains. Single thread,
 * poll(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 256
#define QMAX (4u << 20)

typedef struct chunk {
  struct chunk *next;
  uint64_t due;
  size_t len, off;
  uint8_t data[];
} chunk;

typedef struct dir {
  chunk *head, *tail;
  size_t bytes;
  int eof, shut;
  uint64_t free_us; /* --rate: the link is busy until then (CLOCK_MONOTONIC, us) */
} dir;

typedef struct pair {
  int fd[2]; /* 0 client, 1 upstream */
  dir d[2];  /* d[i]: bytes read from fd[i], to write to fd[1-i] */
  int used;
} pair;

static pair P[MAXC];
static uint64_t g_delay, g_cut, g_jitter, g_rate, g_qmax = QMAX;
static volatile sig_atomic_t g_calm;

static void on_usr1(int sig) {
  (void)sig;
  g_calm = 1;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nb(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void drop(pair *p, int rst) {
  for (int i = 0; i < 2; i++) {
    if (rst) {
      struct linger l = {1, 0};
      setsockopt(p->fd[i], SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(p->fd[i]);
    while (p->d[i].head) {
      chunk *c = p->d[i].head;
      p->d[i].head = c->next;
      free(c);
    }
  }
  memset(p, 0, sizeof *p);
}

int main(int argc, char **argv) {
  int lport = 0, tport = 0, log_cuts = 0;
  unsigned long cuts = 0;
  const char *thost = "127.0.0.1", *bind_addr = "127.0.0.1";
  static char hostbuf[64];
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--listen")) lport = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--target")) {
      const char *c = strrchr(argv[i + 1], ':');
      if (c) {
        snprintf(hostbuf, sizeof hostbuf, "%.*s", (int)(c - argv[i + 1]), argv[i + 1]);
        thost = hostbuf;
        tport = atoi(c + 1);
      } else {
        tport = atoi(argv[i + 1]);
      }
    } else if (!strcmp(argv[i], "--delay-ms")) g_delay = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--rate")) g_rate = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--cut-every-ms")) g_cut = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--cut-jitter-ms")) g_jitter = strtoull(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--log-cuts")) log_cuts = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--bind")) bind_addr = argv[i + 1];
  }
  if (g_rate) {
    g_qmax = g_rate / 4;
    if (g_qmax < 65536) g_qmax = 65536;
  }
  if (!tport) {
    fprintf(stderr, "usage: msg_proxy --listen PORT --target [HOST:]PORT [--delay-ms N] [--cut-every-ms N]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction usr1;
  memset(&usr1, 0, sizeof usr1);
  usr1.sa_handler = on_usr1; /* no SA_RESTART: poll() returns EINTR at once */
  sigaction(SIGUSR1, &usr1, NULL);
  srand((unsigned)(getpid() ^ now_ms()));
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport)};
  inet_pton(AF_INET, bind_addr, &sa.sin_addr);
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 64) < 0) {
    perror("msg_proxy: listen");
    return 1;
  }
  socklen_t sl = sizeof sa;
  getsockname(ls, (struct sockaddr *)&sa, &sl);
  printf("%d\n", ntohs(sa.sin_port));
  fflush(stdout);
  nb(ls);
  struct sockaddr_in ta = {.sin_family = AF_INET, .sin_port = htons((uint16_t)tport)};
  inet_pton(AF_INET, thost, &ta.sin_addr);
  uint64_t next_cut = g_cut ? now_ms() + g_cut + (g_jitter ? (uint64_t)rand() % (g_jitter + 1) : 0) : UINT64_MAX;
  static uint8_t buf[65536];
  for (;;) {
    struct pollfd pf[1 + 2 * MAXC];
    int map[1 + 2 * MAXC];
    int n = 0;
    pf[n].fd = ls;
    pf[n].events = POLLIN;
    map[n++] = -1;
    uint64_t now = now_ms(), wake = next_cut;
    for (int i = 0; i < MAXC; i++) {
      if (!P[i].used) continue;
      for (int s = 0; s < 2; s++) {
        short ev = 0;
        if (!P[i].d[s].eof && P[i].d[s].bytes < g_qmax) ev |= POLLIN;
        chunk *c = P[i].d[1 - s].head; /* what goes out on fd[s] */
        if (c) {
          if (c->due <= now) ev |= POLLOUT;
          else if (c->due < wake) wake = c->due;
        }
        pf[n].fd = P[i].fd[s];
        pf[n].events = ev;
        map[n++] = i * 2 + s;
      }
    }
    int to = wake == UINT64_MAX ? -1 : wake <= now ? 0 : (int)(wake - now);
    if (poll(pf, (nfds_t)n, to) < 0) {
      if (errno != EINTR) return 1;
      for (int k = 0; k < n; k++) pf[k].revents = 0; /* a signal (SIGUSR1): nothing to serve yet */
    }
    now = now_ms();
    if (g_calm == 1) {
      g_calm = 2;
      next_cut = UINT64_MAX;
      if (log_cuts) {
        printf("calm cuts %lu\n", cuts);
        fflush(stdout);
      }
    }
    if (now >= next_cut) {
      int closed = 0;
      for (int i = 0; i < MAXC; i++)
        if (P[i].used) {
          drop(&P[i], 1);
          closed++;
        }
      cuts++;
      if (log_cuts) {
        printf("cut %lu conns %d\n", cuts, closed);
        fflush(stdout);
      }
      next_cut = now + g_cut + (g_jitter ? (uint64_t)rand() % (g_jitter + 1) : 0);
      continue;
    }
    if (pf[0].revents & POLLIN) {
      int c;
      while ((c = accept(ls, NULL, NULL)) >= 0) {
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(u, (struct sockaddr *)&ta, sizeof ta) < 0) {
          close(u);
          close(c);
          continue;
        }
        int slot = -1;
        for (int i = 0; i < MAXC && slot < 0; i++)
          if (!P[i].used) slot = i;
        if (slot < 0) {
          close(u);
          close(c);
          continue;
        }
        nb(c);
        nb(u);
        memset(&P[slot], 0, sizeof P[slot]);
        P[slot].used = 1;
        P[slot].fd[0] = c;
        P[slot].fd[1] = u;
      }
    }
    for (int k = 1; k < n; k++) {
      int i = map[k] / 2, s = map[k] % 2;
      pair *p = &P[i];
      if (!p->used || p->fd[s] != pf[k].fd) continue;
      if (pf[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = read(p->fd[s], buf, sizeof buf);
        if (r > 0) {
          chunk *c = malloc(sizeof *c + (size_t)r);
          c->next = NULL;
          c->due = now + g_delay;
          if (g_rate) { /* serialised behind what is already on the link */
            dir *d = &p->d[s];
            uint64_t start = d->free_us > now * 1000u ? d->free_us : now * 1000u;
            d->free_us = start + (uint64_t)r * 1000000u / g_rate;
            c->due = (d->free_us + 999u) / 1000u + g_delay;
          }
          c->len = (size_t)r;
          c->off = 0;
          memcpy(c->data, buf, (size_t)r);
          if (p->d[s].tail) p->d[s].tail->next = c;
          else p->d[s].head = c;
          p->d[s].tail = c;
          p->d[s].bytes += (size_t)r;
        } else if (r == 0) {
          p->d[s].eof = 1;
        } else if (errno != EAGAIN && errno != EINTR) {
          drop(p, 1);
          continue;
        }
      }
      if (pf[k].revents & POLLOUT) {
        dir *d = &p->d[1 - s];
        while (d->head && d->head->due <= now) {
          chunk *c = d->head;
          ssize_t w = write(p->fd[s], c->data + c->off, c->len - c->off);
          if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) drop(p, 1);
            break;
          }
          c->off += (size_t)w;
          d->bytes -= (size_t)w;
          if (c->off < c->len) break;
          d->head = c->next;
          if (!d->head) d->tail = NULL;
          free(c);
        }
        if (!p->used) continue;
      }
    }
    /* half-closes once a side's queue has drained */
    for (int i = 0; i < MAXC; i++) {
      pair *p = &P[i];
      if (!p->used) continue;
      for (int s = 0; s < 2; s++)
        if (p->d[s].eof && !p->d[s].head && !p->d[s].shut) {
          shutdown(p->fd[1 - s], SHUT_WR);
          p->d[s].shut = 1;
        }
      if (p->d[0].shut && p->d[1].shut) drop(p, 0);
    }
  }
}
