/*
 * fuzz_assembly — the pipeline's small parsers (proto/assembly.c):
 * bg_channel_parse reads ?channel=upload:BRANCH:ASSEMBLY_ID of GET
 * /api/stream (handlers/stream.c), bg_webhook_schedule_parse the config key
 * webhooks.schedule; the id checks guard route parameters and
 * Upload-Metadata values.
 *
 * Invariants: an accepted channel is exactly "upload:" branch ":" id with
 * a valid branch name and id; a schedule has 1..BG_WEBHOOK_SCHEDULE_MAX
 * delays of at most BG_WEBHOOK_DELAY_MAX_S seconds each.
 */
#include "fuzz.h"

#include "proto/assembly.h"
#include "proto/parse.h"

static void channel(const uint8_t *data, size_t size)
{
    char *s = malloc(size > 0 ? size : 1);
    memcpy(s, data, size);
    char branch[BG_BRANCH_NAME_MAX + 1], id[BG_ASSEMBLY_ID_LEN + 1];
    memset(branch, 'x', sizeof(branch));
    if (bg_channel_parse(s, size, branch, id) == BG_OK) {
        size_t blen = strlen(branch);
        FUZZ_CHECK(bg_str_is_ident(branch, blen, BG_BRANCH_NAME_MAX, "-_."));
        FUZZ_CHECK(bg_assembly_id_valid(id));
        FUZZ_CHECK(size == 7 + blen + 1 + BG_ASSEMBLY_ID_LEN);
        FUZZ_CHECK(memcmp(s, "upload:", 7) == 0 && memcmp(s + 7, branch, blen) == 0 &&
                   s[7 + blen] == ':' && memcmp(s + 8 + blen, id, BG_ASSEMBLY_ID_LEN) == 0);
    }
    free(s);
}

static void schedule(const char *s)
{
    long long ms[BG_WEBHOOK_SCHEDULE_MAX + 1];
    ms[BG_WEBHOOK_SCHEDULE_MAX] = -42;
    size_t n = SIZE_MAX;
    if (bg_webhook_schedule_parse(s, ms, &n) == BG_OK) {
        FUZZ_CHECK(n >= 1 && n <= BG_WEBHOOK_SCHEDULE_MAX);
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(ms[i] >= 0 && ms[i] <= (long long)BG_WEBHOOK_DELAY_MAX_S * 1000);
    }
    FUZZ_CHECK(ms[BG_WEBHOOK_SCHEDULE_MAX] == -42);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    channel(data, size);
    char *s = fuzz_strndup(data, size);
    schedule(s);
    bool a = bg_assembly_id_valid(s), m = bg_md5_hex_valid(s), u = bg_upload_id_valid(s);
    FUZZ_CHECK(!a || strlen(s) == BG_ASSEMBLY_ID_LEN);
    FUZZ_CHECK(!m || strlen(s) == 32);
    FUZZ_CHECK(u == m);
    bg_hex_lower(s);
    free(s);
    return 0;
}
