/* Target of tests/test_usdt.py: fires USDT probes as often as told on stdin, one command a line,
 * and answers "ok" (or a number) when done. Probes: bkprov:tick (3 arguments), bkother:tick (the
 * same name under another provider), bkprov:gated (behind a semaphore, in usdt_gated.c) and
 * bklib:libtick (in libbkusdt.so). */
#include <stdio.h>
#include <sys/sdt.h>
#include <unistd.h>

long bk_gated(long n);       /* usdt_gated.c: how many times the semaphore was seen set */
void bk_lib_usdt(long n);    /* libbkusdt.so */

int main(void)
{
    char line[64];
    long n;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%d\n", getpid());
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "tick %ld", &n) == 1) {
            for (long i = 0; i < n; i++) {
                int small = (int)i;
                DTRACE_PROBE3(bkprov, tick, small, i * 3, -7);
            }
        } else if (sscanf(line, "other %ld", &n) == 1) {
            for (long i = 0; i < n; i++)
                DTRACE_PROBE1(bkother, tick, i);
        } else if (sscanf(line, "gated %ld", &n) == 1) {
            printf("%ld\n", bk_gated(n));
            continue;
        } else if (sscanf(line, "lib %ld", &n) == 1) {
            bk_lib_usdt(n);
        }
        printf("ok\n");
    }
    return 0;
}
