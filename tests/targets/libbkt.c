/* libbkt.so for tests/test_uprobes.py: a symbol with two versions (bk_ver@BKT_1 and the default
 * bk_ver@@BKT_2, see libbkt.map), a plain function, and a GNU indirect function. */
__attribute__((noinline)) int bk_ver_v1(int x) { __asm__ volatile(""); return x + 1; }
__attribute__((noinline)) int bk_ver_v2(int x) { __asm__ volatile(""); return x + 2; }
__asm__(".symver bk_ver_v1, bk_ver@BKT_1");
__asm__(".symver bk_ver_v2, bk_ver@@BKT_2");

__attribute__((noinline)) int bk_lib_fn(int x) { __asm__ volatile(""); return x * 2; }

__attribute__((noinline)) static int bk_ifunc_impl(int x) { __asm__ volatile(""); return x + 5; }
static int (*bk_ifunc_resolver(void))(int) { return bk_ifunc_impl; }
int bk_ifunc(int) __attribute__((ifunc("bk_ifunc_resolver")));
