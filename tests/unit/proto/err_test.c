/*
 * Unit tests for proto/err.h: every bg_err has a stable name and API code,
 * and values outside the enum never crash the lookups.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "proto/err.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool all_in(const char *s, const char *alphabet)
{
    return s[0] != '\0' && strspn(s, alphabet) == strlen(s);
}

static void test_every_error_has_name_and_code(void **state)
{
    (void)state;
    for (int i = 0; i < BG_ERR_COUNT_; i++) {
        const char *name = bg_err_name((bg_err)i), *code = bg_err_code((bg_err)i);
        if (name == NULL || code == NULL) {
            print_error("bg_err %d: name %p code %p\n", i, (const void *)name, (const void *)code);
            fail();
        }
        /* names are lower-case for logs, codes SNAKE_CASE for the API */
        if (!all_in(name, "abcdefghijklmnopqrstuvwxyz") ||
            !all_in(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") || code[0] == '_') {
            print_error("bg_err %d: name \"%s\" code \"%s\"\n", i, name, code);
            fail();
        }
        assert_string_not_equal(name, "unknown");
    }
}

static void test_names_are_distinct(void **state)
{
    (void)state;
    for (int i = 0; i < BG_ERR_COUNT_; i++) {
        for (int j = i + 1; j < BG_ERR_COUNT_; j++) {
            if (strcmp(bg_err_name((bg_err)i), bg_err_name((bg_err)j)) == 0 ||
                strcmp(bg_err_code((bg_err)i), bg_err_code((bg_err)j)) == 0) {
                print_error("bg_err %d and %d share a name or code\n", i, j);
                fail();
            }
        }
    }
}

/* The names and codes are a stable interface (logs, API clients). */
static void test_known_values(void **state)
{
    (void)state;
    struct {
        bg_err e;
        const char *name, *code;
    } cases[] = {
        {BG_OK, "ok", "OK"},
        {BG_ENOMEM, "enomem", "OUT_OF_MEMORY"},
        {BG_EINVAL, "einval", "INVALID_REQUEST"},
        {BG_ETOOBIG, "etoobig", "PAYLOAD_TOO_LARGE"},
        {BG_ENOTFOUND, "enotfound", "NOT_FOUND"},
        {BG_ECONFLICT, "econflict", "CONFLICT"},
        {BG_EAUTH, "eauth", "AUTH_REQUIRED"},
        {BG_EFORBIDDEN, "eforbidden", "FORBIDDEN"},
        {BG_EBUSY, "ebusy", "SERVICE_BUSY"},
        {BG_ETIMEOUT, "etimeout", "TIMEOUT"},
        {BG_EPEER, "epeer", "PEER_ERROR"},
        {BG_EMEDIA, "emedia", "PROCESSING_ERROR"},
        {BG_EIO, "eio", "IO_ERROR"},
        {BG_EINTERNAL, "einternal", "INTERNAL_ERROR"},
    };
    /* the table above covers the whole enum */
    assert_int_equal(N_ELEMS(cases), BG_ERR_COUNT_);
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        assert_string_equal(bg_err_name(cases[i].e), cases[i].name);
        assert_string_equal(bg_err_code(cases[i].e), cases[i].code);
    }
}

static void test_out_of_range(void **state)
{
    (void)state;
    const unsigned bad[] = {BG_ERR_COUNT_, BG_ERR_COUNT_ + 1, 1000, INT_MAX, UINT_MAX,
                            (unsigned)-1 - 1};
    for (size_t i = 0; i < N_ELEMS(bad); i++) {
        bg_err e = (bg_err)bad[i];
        assert_string_equal(bg_err_name(e), "unknown");
        assert_string_equal(bg_err_code(e), "INTERNAL_ERROR");
    }
    /* a negative value, as a sign-extended int might carry */
    bg_err neg = (bg_err)-1;
    assert_string_equal(bg_err_name(neg), "unknown");
    assert_string_equal(bg_err_code(neg), "INTERNAL_ERROR");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_error_has_name_and_code),
        cmocka_unit_test(test_names_are_distinct),
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
