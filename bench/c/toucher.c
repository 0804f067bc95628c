/* The app side of the fault-path benchmark, identical for both handlers. It connects
 * to the handler, receives the region memfd, maps it, registers the mapping with its
 * own userfaultfd (MISSING|MINOR|WP, as a Naplus app does), hands the userfaultfd over
 * and keeps no copy. Then, for each round, it empties the memfd (so every page is a
 * MISSING fault again) and reads one byte of every page, timing the whole scan.
 * Output: one line per round, "<nanoseconds> <checksum>".
 * usage: toucher <socket> <pages> <rounds> */
#include "common.h"
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc != 4) { fprintf(stderr, "usage: toucher <socket> <pages> <rounds>\n"); return 2; }
  size_t pages = strtoul(argv[2], 0, 10), rounds = strtoul(argv[3], 0, 10), len = pages * 4096;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strncpy(sa.sun_path, argv[1], sizeof sa.sun_path - 1);
  if (connect(sock, (struct sockaddr *)&sa, sizeof sa) < 0) DIE("connect %s", argv[1]);
  char buf[64];
  int memfd;
  recv_fd(sock, buf, sizeof buf, &memfd);
  if (memfd < 0) { fprintf(stderr, "no memfd received\n"); return 1; }
  volatile uint8_t *mem = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
  if (mem == MAP_FAILED) DIE("mmap");
  int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) DIE("userfaultfd");
  struct uffdio_api api = {.api = UFFD_API,
                           .features = UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |
                                       UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_PAGEFAULT_FLAG_WP};
  if (ioctl(uffd, UFFDIO_API, &api) < 0) DIE("UFFDIO_API");
  struct uffdio_register reg = {.range = {(uintptr_t)mem, len},
                                .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP};
  if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) DIE("UFFDIO_REGISTER");
  uint64_t hello[2] = {(uintptr_t)mem, api.features};
  send_fd(sock, hello, sizeof hello, uffd);
  close(uffd);
  for (size_t r = 0; r < rounds; r++) {
    if (fallocate(memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, len) < 0) DIE("fallocate");
    struct timespec t0, t1;
    uint64_t sum = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t p = 0; p < pages; p++) sum += mem[p * 4096];
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%lld %llu\n", (long long)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)),
           (unsigned long long)sum);
    fflush(stdout);
  }
  return 0;
}
