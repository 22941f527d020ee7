/* test_base_slice.c — the growable buffer's formatting helpers and slice utilities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/slice.h"

static void expect_i64(long long v)
{
    struct buf b = BUF_INIT;
    char want[32];
    snprintf(want, sizeof want, "%lld", v);
    assert_true(buf_append_i64(&b, v));
    assert_true(buf_nul(&b));
    assert_string_equal(b.p, want);
    buf_free(&b);
}

static void test_append_i64(void **state)
{
    (void)state;
    long long cases[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, LLONG_MAX, LLONG_MIN, -1000};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_i64(cases[i]);
}

static void test_printf_grows(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_true(buf_printf(&b, "a%sb", big)); /* does not fit the first reservation */
    assert_int_equal(b.n, 1001);
    assert_true(buf_printf(&b, "%d", 42));
    assert_int_equal(b.n, 1003);
    assert_true(buf_nul(&b));
    assert_int_equal(b.p[0], 'a');
    assert_string_equal(b.p + 1000, "b42");
    buf_free(&b);
}

static void test_slice_helpers(void **state)
{
    (void)state;
    unsigned long long v;
    assert_true(slice_to_u64(SLICE_LIT("18446744073709551615"), &v));
    assert_true(v == ULLONG_MAX);
    assert_false(slice_to_u64(SLICE_LIT("18446744073709551616"), &v));
    assert_false(slice_to_u64(SLICE_LIT(""), &v));
    assert_false(slice_to_u64(SLICE_LIT("12a"), &v));
    assert_true(slice_ieq_str(SLICE_LIT("Content-Type"), "content-type"));
    struct slice t = slice_trim(SLICE_LIT(" \tx y\t "));
    assert_true(slice_eq_str(t, "x y"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_i64),
        cmocka_unit_test(test_printf_grows),
        cmocka_unit_test(test_slice_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
