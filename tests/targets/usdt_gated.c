/* A probe behind a semaphore: the kernel counts bkprov_gated_semaphore up while it is attached. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

unsigned short bkprov_gated_semaphore __attribute__((section(".probes")));

long bk_gated(long n)
{
    long seen = 0;

    for (long i = 0; i < n; i++) {
        if (__builtin_expect(bkprov_gated_semaphore, 0)) {
            seen++;
            DTRACE_PROBE1(bkprov, gated, i);
        }
    }
    return seen;
}
