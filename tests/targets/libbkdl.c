/* libbkdl.so for tests/test_uprobes.py: loaded only with dlopen() from a temporary directory. */
__attribute__((noinline)) int bk_dl_fn(int x) { __asm__ volatile(""); return x + 3; }
