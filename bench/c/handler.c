/* The C baseline of the fault-path benchmark: the smallest handler doing what the
 * Naplus node does for a read miss. A sleeping thread waits in poll(), drains every
 * pending uffd_msg, and for each fault copies the page (or the aligned block of
 * `batch` pages around it) from a "segment" file into its own mapping of the region
 * memfd, then maps it read-only in the app with one UFFDIO_CONTINUE (MODE_WP).
 * usage: handler <socket> <pages> <batch> <segment-file> */
#include "common.h"
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: handler <socket> <pages> <batch> <segment>\n"); return 2; }
  size_t pages = strtoul(argv[2], 0, 10), batch = strtoul(argv[3], 0, 10), len = pages * 4096;
  int seg = open(argv[4], O_RDONLY);
  if (seg < 0) DIE("open %s", argv[4]);
  uint8_t *src = mmap(0, len, PROT_READ, MAP_SHARED, seg, 0);
  int memfd = memfd_create("region", MFD_CLOEXEC);
  if (ftruncate(memfd, len) < 0) DIE("ftruncate");
  uint8_t *cache = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (src == MAP_FAILED || cache == MAP_FAILED) DIE("mmap");

  int lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  unlink(argv[1]);
  if (bind(lsock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lsock, 1) < 0) DIE("listen");
  printf("ready\n");
  fflush(stdout);
  int sock = accept(lsock, 0, 0);
  send_fd(sock, "memfd", 5, memfd);
  uint64_t hello[2];
  int uffd;
  recv_fd(sock, hello, sizeof hello, &uffd);
  uintptr_t base = hello[0];

  struct pollfd pfd = {.fd = uffd, .events = POLLIN};
  struct uffd_msg msgs[64];
  for (;;) {
    if (poll(&pfd, 1, -1) < 0) DIE("poll");
    if (pfd.revents & (POLLERR | POLLHUP)) return 0;
    ssize_t n = read(uffd, msgs, sizeof msgs);
    if (n < 0) { if (errno == EAGAIN) continue; return 0; }
    for (ssize_t i = 0; i < n / (ssize_t)sizeof msgs[0]; i++) {
      if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
      size_t page = (msgs[i].arg.pagefault.address - base) / 4096;
      size_t first = page - page % batch, count = first + batch > pages ? pages - first : batch;
      memcpy(cache + first * 4096, src + first * 4096, count * 4096);
      struct uffdio_continue c = {.range = {base + first * 4096, count * 4096}, .mode = UFFDIO_CONTINUE_MODE_WP};
      if (ioctl(uffd, UFFDIO_CONTINUE, &c) < 0 && errno != EEXIST) DIE("UFFDIO_CONTINUE");
    }
  }
}
