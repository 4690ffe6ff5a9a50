#include "testutil.h"
START_TEST(placeholder_eevdf) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void) { Suite *s = suite_create("eevdf"); TCase *tc = tcase_create("eevdf"); tcase_add_test(tc, placeholder_eevdf); suite_add_tcase(s, tc); return run_suite(s); }
