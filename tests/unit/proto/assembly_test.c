/*
 * Unit tests for proto/assembly.h: assembly ids, id formats, SSE channel
 * names, job backoff and the webhook retry schedule.
 *
 * Expected assembly ids were computed independently with
 * `printf '%s' '<branch>:<md5s>:<template>:<user>' | sha256sum`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "proto/assembly.h"
#include "proto/sig.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define ID_A "47c3e7d2ac05660272d876d9e4553291a104cd496e77e788d87fe361ca3df71c"

static void test_assembly_id_vectors(void **state)
{
    (void)state;
    char out[BG_ASSEMBLY_ID_LEN + 1];
    const char *one[] = {"9e107d9d372bb6826bd81d3542a419d6"};
    bg_assembly_id("main", one, 1, "audio-preview", "anonymous", out);
    assert_string_equal(out, ID_A);

    const char *three[] = {"9e107d9d372bb6826bd81d3542a419d6", "e4d909c290d0fb1ca068ffaddf22cbd0",
                           "d41d8cd98f00b204e9800998ecf8427e"};
    bg_assembly_id("eu-1", three, 3, "video-encode", "2f1c3e5a-0b7d-4c61-9a8e-3d2b1f0e6c4a", out);
    assert_string_equal(out, "511d69271cf77533c9634c324ae4305130fa625cda5e0f55c12150ab127abf45");

    bg_assembly_id("main", NULL, 0, "t", "u", out);
    assert_string_equal(out, "006ce38b9b6f8b9175ee34970520d8719f5fb3c44132ad5ad00b5de632d1e7ef");
    assert_true(bg_assembly_id_valid(out));
}

/* Each input takes part: changing any one changes the id, and so does the
 * order of the md5s. */
static void test_assembly_id_inputs(void **state)
{
    (void)state;
    const char *ab[] = {"9e107d9d372bb6826bd81d3542a419d6", "e4d909c290d0fb1ca068ffaddf22cbd0"};
    const char *ba[] = {"e4d909c290d0fb1ca068ffaddf22cbd0", "9e107d9d372bb6826bd81d3542a419d6"};
    char ids[6][BG_ASSEMBLY_ID_LEN + 1];
    bg_assembly_id("main", ab, 2, "t", "u", ids[0]);
    bg_assembly_id("main", ba, 2, "t", "u", ids[1]);
    bg_assembly_id("main2", ab, 2, "t", "u", ids[2]);
    bg_assembly_id("main", ab, 2, "t2", "u", ids[3]);
    bg_assembly_id("main", ab, 2, "t", "u2", ids[4]);
    bg_assembly_id("main", ab, 1, "t", "u", ids[5]);
    for (int i = 0; i < 6; i++)
        for (int j = i + 1; j < 6; j++)
            assert_string_not_equal(ids[i], ids[j]);
    char again[BG_ASSEMBLY_ID_LEN + 1];
    bg_assembly_id("main", ab, 2, "t", "u", again);
    assert_string_equal(again, ids[0]);
}

static void test_hex_formats(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool assembly, md5;
    } cases[] = {
        {ID_A, true, false},
        {"9e107d9d372bb6826bd81d3542a419d6", false, true},
        {"9E107D9D372BB6826BD81D3542A419D6", false, false},
        {"9e107d9d372bb6826bd81d3542a419d", false, false},
        {"9e107d9d372bb6826bd81d3542a419d6a", false, false},
        {"9e107d9d372bb6826bd81d3542a419dg", false, false},
        {"9e107d9d372bb6826bd81d3542a419d ", false, false},
        {"47c3e7d2ac05660272d876d9e4553291a104cd496e77e788d87fe361ca3df71C", false, false},
        {"47c3e7d2ac05660272d876d9e4553291a104cd496e77e788d87fe361ca3df71", false, false},
        {ID_A "0", false, false},
        {"", false, false},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        assert_int_equal(bg_assembly_id_valid(cases[i].s), cases[i].assembly);
        assert_int_equal(bg_md5_hex_valid(cases[i].s), cases[i].md5);
        assert_int_equal(bg_upload_id_valid(cases[i].s), cases[i].md5);
    }
    assert_false(bg_assembly_id_valid(NULL));
    assert_false(bg_md5_hex_valid(NULL));
    assert_false(bg_upload_id_valid(NULL));

    char s[] = "9E107D9D372BB6826BD81D3542A419D6";
    bg_hex_lower(s);
    assert_string_equal(s, "9e107d9d372bb6826bd81d3542a419d6");
    assert_true(bg_md5_hex_valid(s));
    char mixed[] = "AbC-xyZ_09";
    bg_hex_lower(mixed);
    assert_string_equal(mixed, "abc-xyz_09");
    bg_hex_lower(NULL);
}

static void test_upload_id_new(void **state)
{
    (void)state;
    char a[BG_UPLOAD_ID_LEN + 1], b[BG_UPLOAD_ID_LEN + 1];
    bg_upload_id_new(a);
    bg_upload_id_new(b);
    assert_int_equal(strlen(a), 32);
    assert_true(bg_upload_id_valid(a));
    assert_true(bg_upload_id_valid(b));
    assert_string_not_equal(a, b);
}

static void test_channel_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bg_err err;
        const char *branch;
    } cases[] = {
        {"upload:main:" ID_A, BG_OK, "main"},
        {"upload:eu-1.prod_B:" ID_A, BG_OK, "eu-1.prod_B"},
        {"upload:b:" ID_A, BG_OK, "b"},
        {"upload:"
         "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123:" ID_A,
         BG_OK, "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"},
        /* refused */
        {"upload:"
         "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234:" ID_A,
         BG_EINVAL, NULL},
        {"", BG_EINVAL, NULL},
        {"upload:", BG_EINVAL, NULL},
        {"upload:main", BG_EINVAL, NULL},
        {"upload:main:", BG_EINVAL, NULL},
        {"upload::" ID_A, BG_EINVAL, NULL},
        {"upload:" ID_A, BG_EINVAL, NULL},
        {"Upload:main:" ID_A, BG_EINVAL, NULL},
        {"download:main:" ID_A, BG_EINVAL, NULL},
        {"uploads:main:" ID_A, BG_EINVAL, NULL},
        {"upload:ma/in:" ID_A, BG_EINVAL, NULL},
        {"upload:ma in:" ID_A, BG_EINVAL, NULL},
        {"upload:main:extra:" ID_A, BG_EINVAL, NULL},
        {"upload:main:" ID_A ":", BG_EINVAL, NULL},
        {"upload:main:" ID_A "0", BG_EINVAL, NULL},
        {"upload:main:47C3E7D2AC05660272D876D9E4553291A104CD496E77E788D87FE361CA3DF71C", BG_EINVAL,
         NULL},
        {"upload:main:47c3e7d2ac05660272d876d9e4553291a104cd496e77e788d87fe361ca3df71", BG_EINVAL,
         NULL},
        {"upload:main:47c3e7d2ac05660272d876d9e4553291a104cd496e77e788d87fe361ca3df7:c", BG_EINVAL,
         NULL},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char branch[BG_BRANCH_NAME_MAX + 1], id[BG_ASSEMBLY_ID_LEN + 1];
        memset(branch, '#', sizeof(branch));
        memset(id, '#', sizeof(id));
        bg_err e = bg_channel_parse(cases[i].s, strlen(cases[i].s), branch, id);
        if (e != cases[i].err)
            print_error("case %zu \"%s\": got %d\n", i, cases[i].s, e);
        assert_int_equal(e, cases[i].err);
        if (e != BG_OK) {
            assert_int_equal(branch[0], '#');
            assert_int_equal(id[0], '#');
            continue;
        }
        assert_string_equal(branch, cases[i].branch);
        assert_string_equal(id, ID_A);
    }
    /* By length, not NUL: a NUL inside and bytes past len. */
    char branch[BG_BRANCH_NAME_MAX + 1], id[BG_ASSEMBLY_ID_LEN + 1];
    const char with_nul[] = "upload:ma\0n:" ID_A;
    assert_int_equal(bg_channel_parse(with_nul, sizeof(with_nul) - 1, branch, id), BG_EINVAL);
    const char longer[] = "upload:main:" ID_A "trailing";
    assert_int_equal(bg_channel_parse(longer, strlen("upload:main:" ID_A), branch, id), BG_OK);
    assert_string_equal(id, ID_A);
}

static void test_job_backoff(void **state)
{
    (void)state;
    static const struct {
        int attempt;
        long long unit, want;
    } cases[] = {
        {1, 1000, 16000},
        {2, 1000, 31000},
        {3, 1000, 96000},
        {4, 1000, 271000},
        {10, 1000, 10015000},
        {1, 1, 16},
        {0, 1000, 16000},
        {-5, 1000, 16000},
        {3, 0, 0},
        {3, -1000, 0},
        /* saturation */
        {1000000, 1000, LLONG_MAX},
        {INT_MAX, 1000, LLONG_MAX},
        {INT_MAX, 1, LLONG_MAX},
        {1, LLONG_MAX, LLONG_MAX},
        {55108, 1, 55108LL * 55108 * 55108 * 55108 + 15}, /* the largest attempt that fits */
        {55109, 1, LLONG_MAX},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        long long got = bg_job_backoff_ms(cases[i].attempt, cases[i].unit);
        if (got != cases[i].want)
            print_error("case %zu: attempt %d unit %lld: got %lld\n", i, cases[i].attempt,
                        cases[i].unit, got);
        assert_true(got == cases[i].want);
    }
}

static void test_webhook_schedule(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bg_err err;
        size_t n;
        long long ms[BG_WEBHOOK_SCHEDULE_MAX];
    } cases[] = {
        {"5s,5m,30m,2h,5h,10h", BG_OK, 6, {5000, 300000, 1800000, 7200000, 18000000, 36000000}},
        {"1", BG_OK, 1, {1000}},
        {"0s", BG_OK, 1, {0}},
        {"1d", BG_OK, 1, {86400000}},
        {"30d", BG_OK, 1, {2592000000LL}},
        {" 5s , 1m ", BG_OK, 2, {5000, 60000}},
        {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
         BG_OK,
         16,
         {1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13000, 14000,
          15000, 16000}},
        /* refused */
        {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17", BG_EINVAL, 0, {0}},
        {"", BG_EINVAL, 0, {0}},
        {" ", BG_EINVAL, 0, {0}},
        {",", BG_EINVAL, 0, {0}},
        {"5s,", BG_EINVAL, 0, {0}},
        {",5s", BG_EINVAL, 0, {0}},
        {"5s,,5m", BG_EINVAL, 0, {0}},
        {"5x", BG_EINVAL, 0, {0}},
        {"-5s", BG_EINVAL, 0, {0}},
        {"5 s", BG_EINVAL, 0, {0}},
        {"1.5h", BG_EINVAL, 0, {0}},
        {"31d", BG_EINVAL, 0, {0}},
        {"99999999999999999999999s", BG_EINVAL, 0, {0}},
        {"5s;5m", BG_EINVAL, 0, {0}},
    };
    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        long long out[BG_WEBHOOK_SCHEDULE_MAX];
        size_t n = 777;
        memset(out, 0x11, sizeof(out));
        bg_err e = bg_webhook_schedule_parse(cases[i].s, out, &n);
        if (e != cases[i].err)
            print_error("case %zu \"%s\": got %d\n", i, cases[i].s, e);
        assert_int_equal(e, cases[i].err);
        if (e != BG_OK) {
            assert_int_equal(n, 777);
            assert_true(out[0] == 0x1111111111111111LL);
            continue;
        }
        assert_int_equal(n, cases[i].n);
        for (size_t j = 0; j < n; j++)
            assert_true(out[j] == cases[i].ms[j]);
    }
    long long out[BG_WEBHOOK_SCHEDULE_MAX];
    size_t n;
    assert_int_equal(bg_webhook_schedule_parse(NULL, out, &n), BG_EINVAL);
}

static int group_setup(void **state)
{
    (void)state;
    return bg_sig_init() == BG_OK ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_assembly_id_vectors),
        cmocka_unit_test(test_assembly_id_inputs),
        cmocka_unit_test(test_hex_formats),
        cmocka_unit_test(test_upload_id_new),
        cmocka_unit_test(test_channel_parse),
        cmocka_unit_test(test_job_backoff),
        cmocka_unit_test(test_webhook_schedule),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
