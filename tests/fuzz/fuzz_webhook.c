/*
 * fuzz_webhook — Standard Webhooks signatures (proto/webhook.c): the
 * "whsec_" secret an organisation's webhook uses, and the
 * webhook-signature header a receiver checks with bg_webhook_verify.
 *
 * Input, one field per line: "ID TIMESTAMP", the signature header, the
 * secret; the rest is the body.
 *
 * Invariants: a signature bg_webhook_sign makes verifies, also among other
 * entries of the header, and not for another body; a header the fuzzer
 * wrote verifies only when it holds that signature; the time check never
 * overflows.
 */
#include "fuzz.h"

#include <limits.h>

#include "proto/parse.h"
#include "proto/sig.h"
#include "proto/webhook.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (bg_sig_init() != BG_OK)
        abort();
    return 0;
}

/* The next line of *p (NUL-terminated copy, malloc'ed), or NULL at the end. */
static char *line(const uint8_t **p, size_t *n)
{
    const uint8_t *nl = memchr(*p, '\n', *n);
    if (nl == NULL)
        return NULL;
    char *s = fuzz_strndup(*p, (size_t)(nl - *p));
    *n -= (size_t)(nl - *p) + 1;
    *p = nl + 1;
    return s;
}

static void check(const char *id, long long ts, const char *header, const char *secret,
                  const uint8_t *body, size_t len)
{
    static const long long nows[] = {0, 1800000000, LLONG_MIN, LLONG_MAX};
    static const long long tols[] = {0, 300, LLONG_MAX};
    char sig[BG_WEBHOOK_SIG_MAX];
    bg_err s = bg_webhook_sign(secret, id, ts, body, len, sig);
    for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++)
        for (size_t k = 0; k < sizeof(tols) / sizeof(tols[0]); k++) {
            bg_err v = bg_webhook_verify(secret, id, ts, body, len, header, nows[i], tols[k]);
            FUZZ_CHECK(v == BG_OK || v == BG_EAUTH || v == BG_EINVAL);
            FUZZ_CHECK((v == BG_EINVAL) == (s == BG_EINVAL));
            if (v == BG_OK)
                FUZZ_CHECK(strstr(header, sig) != NULL);
        }
    if (s != BG_OK)
        return;
    FUZZ_CHECK(strlen(sig) == 47 && strncmp(sig, "v1,", 3) == 0);
    size_t hlen = strlen(header);
    char *both = malloc(hlen + 1 + sizeof(sig));
    snprintf(both, hlen + 1 + sizeof(sig), "%s %s", header, sig);
    FUZZ_CHECK(bg_webhook_verify(secret, id, ts, body, len, sig, 0, 0) == BG_OK);
    FUZZ_CHECK(bg_webhook_verify(secret, id, ts, body, len, both, ts, 1) == BG_OK);
    FUZZ_CHECK(bg_webhook_verify(secret, id, ts, "x", 1, sig, 0, 0) == BG_EAUTH ||
               (len == 1 && body[0] == 'x'));
    free(both);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *p = data;
    size_t n = size;
    char *first = line(&p, &n), *header = line(&p, &n), *secret = line(&p, &n);
    if (first != NULL && header != NULL && secret != NULL) {
        char *sp = strchr(first, ' ');
        int64_t ts = 0;
        if (sp != NULL) {
            *sp = '\0';
            if (bg_parse_i64(sp + 1, strlen(sp + 1), INT64_MIN, INT64_MAX, &ts) != BG_OK)
                ts = 0;
        }
        uint8_t *body = malloc(n > 0 ? n : 1);
        memcpy(body, p, n);
        check(first, (long long)ts, header, secret, body, n);
        free(body);
    }
    free(first);
    free(header);
    free(secret);
    return 0;
}
