/* proto/url: the normal form that X-Branch-Origin is compared in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/url.h"

static void test_normalize_table(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out; /* out NULL: rejected */
    } cases[] = {
        {"http://a.example.com", "http://a.example.com"},
        {"HTTP://A.Example.COM/", "http://a.example.com"},
        {"https://x.org:443", "https://x.org"},
        {"http://x.org:80/", "http://x.org"},
        {"http://x.org:443", "http://x.org:443"},
        {"https://x.org:80", "https://x.org:80"},
        {"http://127.0.0.1:8000///", "http://127.0.0.1:8000"},
        {"https://x.org/base/", "https://x.org/base"},
        {"https://x.org/Base", "https://x.org/Base"}, /* paths keep their case */
        {"http://[::1]:8080", "http://[::1]:8080"},
        {"http://[::1]:80", "http://[::1]"},
        {"ftp://x.org", NULL},
        {"x.org", NULL},
        {"http://", NULL},
        {"http:///path", NULL},
        {"http://user:pw@x.org", NULL},
        {"http://x.org?a=1", NULL},
        {"http://x.org#frag", NULL},
        {"http://x.org:0", NULL},
        {"http://x.org:65536", NULL},
        {"http://x.org:", NULL},
        {"http://x.org:8a", NULL},
        {"http://x .org", NULL},
        {"http://x.org/a b", NULL},
        {"http://x\x01.org", NULL},
        {"http://x_y.org", NULL},
        {"http://[]:80", NULL},
        {"http://[::1]x", NULL},
        {"http://x.org\\@evil.com", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[BG_URL_MAX] = "untouched";
        bg_err e = bg_url_normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        if (cases[i].out == NULL) {
            if (e != BG_EINVAL)
                fail_msg("accepted %s as %s", cases[i].in, out);
            assert_string_equal(out, "untouched");
        } else {
            if (e != BG_OK)
                fail_msg("rejected %s", cases[i].in);
            assert_string_equal(out, cases[i].out);
        }
    }
}

static void test_length_limits(void **state)
{
    (void)state;
    char in[700], out[BG_URL_MAX];
    memcpy(in, "http://x.org/", 13);
    memset(in + 13, 'a', sizeof(in) - 14);
    in[sizeof(in) - 1] = '\0';
    assert_int_equal(bg_url_normalize(in, strlen(in), out, sizeof(out)), BG_EINVAL);
    /* Fits the input limit but not the caller's buffer. */
    char small[16];
    assert_int_equal(bg_url_normalize("http://example.com/abc", 22, small, sizeof(small)), BG_EINVAL);
    assert_int_equal(bg_url_normalize(NULL, 0, out, sizeof(out)), BG_EINVAL);
    /* Length is honoured: bytes after len are not read. */
    assert_int_equal(bg_url_normalize("http://a.org/ignored", 12, out, sizeof(out)), BG_OK);
    assert_string_equal(out, "http://a.org");
}

static void test_host_port(void **state)
{
    (void)state;
    int https;
    char host[64];
    unsigned port;
    assert_int_equal(bg_url_host_port("https://A.org/x", &https, host, sizeof(host), &port), BG_OK);
    assert_int_equal(https, 1);
    assert_string_equal(host, "a.org");
    assert_int_equal(port, 443);
    assert_int_equal(bg_url_host_port("http://[::1]:9000", &https, host, sizeof(host), &port), BG_OK);
    assert_int_equal(https, 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 9000);
    assert_int_equal(bg_url_host_port("http://127.0.0.1", &https, host, sizeof(host), &port), BG_OK);
    assert_int_equal(port, 80);
    char tiny[4];
    assert_int_equal(bg_url_host_port("http://long.example", &https, tiny, sizeof(tiny), &port), BG_EINVAL);
    assert_int_equal(bg_url_host_port("gopher://x", &https, host, sizeof(host), &port), BG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_table),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_host_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
