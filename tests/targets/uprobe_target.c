/* Target of tests/test_uprobes.py: runs the calls it is told to on stdin, one command a line,
 * and answers "ok" when they are done, so a test can attach, run, check and detach in turn. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* From libbkt.so: bk_ver has two versions; bk_ver_old binds to the old one. */
int bk_ver(int);
int bk_ver_old(int);
__asm__(".symver bk_ver_old, bk_ver@BKT_1");
int bk_lib_fn(int);
int bk_ifunc(int);

volatile long sink;

__attribute__((noinline)) long bk_add(long a, long b) { __asm__ volatile(""); return a + b; }
__attribute__((noinline)) int bk_re_alpha(int x) { __asm__ volatile(""); return x + 1; }
__attribute__((noinline)) int bk_re_beta(int x) { __asm__ volatile(""); return x + 2; }
__attribute__((noinline)) int bk_re_gamma(int x) { __asm__ volatile(""); return x + 3; }
__attribute__((noinline)) int bk_rx_delta(int x) { __asm__ volatile(""); return x + 4; }

/* Four nops before the body, so an offset into the function lands on an instruction. */
int bk_nops(void);
__asm__(".text\n.globl bk_nops\n.type bk_nops,@function\nbk_nops:\n"
        "  nop\n  nop\n  nop\n  nop\n  xorl %eax, %eax\n  ret\n.size bk_nops, .-bk_nops\n");

/* Never called: functions that start with an AVX-512 (EVEX) and an AVX (VEX) instruction, which
 * uprobes cannot single-step (the kernel judges only their opcode byte: 0x7a here reads as jp). */
__asm__(".text\n.globl bk_evex\n.type bk_evex,@function\nbk_evex:\n"
        "  vpbroadcastb %esi, %ymm17\n  ret\n.size bk_evex, .-bk_evex\n"
        ".globl bk_vex\n.type bk_vex,@function\nbk_vex:\n"
        "  vmovd %esi, %xmm0\n  ret\n.size bk_vex, .-bk_vex\n");

int main(void)
{
    char line[256];
    long a, b, c;

    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%d %p %p\n", getpid(), (void *)bk_add, (void *)bk_nops);
    while (fgets(line, sizeof line, stdin)) {
        a = b = c = 0;
        if (sscanf(line, "add %ld", &a) == 1) {
            for (long i = 0; i < a; i++)
                sink += bk_add(i, 1000);
        } else if (sscanf(line, "re %ld %ld %ld", &a, &b, &c) == 3) {
            for (long i = 0; i < a; i++)
                sink += bk_re_alpha(1);
            for (long i = 0; i < b; i++)
                sink += bk_re_beta(2);
            for (long i = 0; i < c; i++)
                sink += bk_re_gamma(3);
            sink += bk_rx_delta(4);
        } else if (sscanf(line, "ver %ld %ld", &a, &b) == 2) {
            for (long i = 0; i < a; i++)
                sink += bk_ver(i);
            for (long i = 0; i < b; i++)
                sink += bk_ver_old(i);
        } else if (sscanf(line, "lib %ld", &a) == 1) {
            for (long i = 0; i < a; i++)
                sink += bk_lib_fn(i);
        } else if (sscanf(line, "ifunc %ld", &a) == 1) {
            for (long i = 0; i < a; i++)
                sink += bk_ifunc(i);
        } else if (sscanf(line, "nops %ld", &a) == 1) {
            for (long i = 0; i < a; i++)
                sink += bk_nops();
        }
        printf("ok\n");
    }
    return 0;
}
