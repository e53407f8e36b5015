/* gateway/cli_license.c — `branchgate license issue | show | revoke |
 * validate`: clients of the license routes (DESIGN.md section 6,
 * docs/licenses.md, docs/cli.md). */
#include "gateway/cli_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define S(obj, key) bg_cli_str((obj), (key), buf, sizeof(buf))

/* ---- license ---- */

static const char license_help[] =
    "usage: branchgate license <subcommand> [options]\n"
    "\n"
    "  issue    --org ID --tier TIER --domain DOMAIN [--domain ...] [--feature NAME ...]\n"
    "           --max-branches N --max-users N (--expires TIME | --valid-for DURATION)\n"
    "           [--not-before TIME]\n"
    "           issue a signed license (top branch only); TIME is RFC 3339 UTC\n"
    "           (2030-01-01T00:00:00Z), DURATION e.g. 365d; prints the license key\n"
    "  show     ID                                    one license, with its key\n"
    "  revoke   ID                                    revoke a license (top branch only)\n"
    "  validate --domain DOMAIN (--key KEY | --key-file FILE)\n"
    "           validate a license key for a domain here (a master asks its top branch);\n"
    "           exit 0 when valid (VALID, GRACE, VALID_CACHED), 1 otherwise\n"
    "\n"
    "  --domain and --feature may repeat or take comma-separated lists.\n"
    "\n"
    "example:\n"
    "  branchgate license issue --org $ORG --tier pro --domain example.com,*.example.org \\\n"
    "      --max-branches 10 --max-users 50 --valid-for 365d\n"
    "  branchgate license validate --domain www.example.org --key-file customer.key\n";

/* expires_at from --expires or --valid-for (exactly one). */
static int license_expiry(const bg_cli_args *a, char out[32])
{
    const char *exp = bg_cli_val(a, "--expires"), *valid = bg_cli_val(a, "--valid-for");
    if ((exp == NULL) == (valid == NULL))
        return bg_cli_usage(a, "give exactly one of --expires TIME and --valid-for DURATION");
    long long ms;
    if (exp != NULL && bg_parse_rfc3339(exp, &ms) != BG_OK)
        return bg_cli_usage(a, "--expires takes an RFC 3339 UTC time such as 2030-01-01T00:00:00Z");
    if (exp != NULL) {
        bg_strlcpy(out, exp, 32);
        return BG_CLI_OK;
    }
    uint64_t secs;
    if (bg_parse_duration(valid, strlen(valid), UINT64_C(3153600000), &secs) != BG_OK || secs == 0)
        return bg_cli_usage(
            a, "--valid-for takes a duration such as 30d or 8760h (at most 100 years)");
    bg_format_rfc3339(bg_now_ms() / 1000 + (long long)secs, out);
    return BG_CLI_OK;
}

static int license_issue(bg_cli *c, const bg_cli_args *a)
{
    const char *org = bg_cli_val(a, "--org"), *tier = bg_cli_val(a, "--tier");
    if (org == NULL || tier == NULL || !bg_cli_flag(a, "--domain") ||
        !bg_cli_flag(a, "--max-branches") || !bg_cli_flag(a, "--max-users"))
        return bg_cli_usage(a,
                            "--org, --tier, --domain, --max-branches and --max-users are required");
    int64_t branches, users;
    if (!bg_cli_int(a, "--max-branches", 1, INT32_MAX, &branches) ||
        !bg_cli_int(a, "--max-users", 0, INT32_MAX, &users))
        return BG_CLI_USAGE;
    char expires[32];
    int rc = license_expiry(a, expires);
    if (rc != BG_CLI_OK)
        return rc;
    const char *nbf = bg_cli_val(a, "--not-before");
    long long ms;
    if (nbf != NULL && bg_parse_rfc3339(nbf, &ms) != BG_OK)
        return bg_cli_usage(a, "--not-before takes an RFC 3339 UTC time");
    json_t *body =
        json_pack("{s:s, s:s, s:o, s:o, s:{s:I, s:I}, s:s}", "organization_id", org, "tier", tier,
                  "domains", bg_cli_split_list(bg_cli_opt_get(a, "--domain")), "features",
                  bg_cli_split_list(bg_cli_opt_get(a, "--feature")), "limits", "branches",
                  (json_int_t)branches, "users", (json_int_t)users, "expires_at", expires);
    if (nbf != NULL)
        json_object_set_new(body, "not_before", json_string(nbf));
    json_t *j = NULL;
    rc = bg_cli_request(c, "POST", "/api/v1/licenses", body, &j);
    if (j != NULL)
        bg_cli_print_object(j, NULL);
    json_decref(j);
    json_decref(body);
    return rc;
}

static int license_show_like(bg_cli *c, const bg_cli_args *a, const char *method,
                             const char *suffix)
{
    char p[BG_CLI_PATH_MAX];
    if (!bg_cli_path(p, "/api/v1/licenses/", a->pos[0], suffix))
        return bg_cli_too_long(a);
    json_t *j = NULL;
    int rc = bg_cli_request(c, method, p, NULL, &j);
    if (j != NULL && suffix == NULL)
        bg_cli_print_object(j, NULL);
    else if (j != NULL)
        printf("license %s is %s\n", a->pos[0], bg_cli_s(j, "status"));
    json_decref(j);
    return rc;
}

static int license_show(bg_cli *c, const bg_cli_args *a)
{
    return license_show_like(c, a, "GET", NULL);
}

static int license_revoke(bg_cli *c, const bg_cli_args *a)
{
    return license_show_like(c, a, "POST", "/revoke");
}

static void validation_text(const json_t *j)
{
    char buf[64];
    const json_t *l = json_object_get(j, "license");
    printf("%s: %s (checked by %s)\n", bg_cli_s(j, "code"), bg_cli_s(j, "detail"),
           S(j, "checked_by"));
    if (json_is_object(l))
        printf("license %s, organisation %s, tier %s, expires %s, status %s\n", bg_cli_s(l, "id"),
               bg_cli_s(l, "organization_id"), bg_cli_s(l, "tier"), bg_cli_s(l, "expires_at"),
               bg_cli_s(l, "status"));
}

static int license_validate(bg_cli *c, const bg_cli_args *a)
{
    const char *domain = bg_cli_val(a, "--domain"), *key = bg_cli_val(a, "--key");
    const char *file = bg_cli_val(a, "--key-file");
    if (domain == NULL || (key == NULL) == (file == NULL))
        return bg_cli_usage(a, "give --domain and exactly one of --key and --key-file");
    char *text = NULL;
    if (file != NULL && bg_cli_read_secret(a, "--key-file", "--key-env", 8192, &text) != BG_CLI_OK)
        return BG_CLI_FAIL;
    json_t *body = json_pack("{s:s, s:s}", "license_key", text ? text : key, "domain", domain);
    bg_cli_secret_free(text);
    bg_cli_resp r;
    json_t *j = NULL;
    int rc = bg_cli_json(c, "POST", "/api/v1/licenses/validate", body, &r, &j);
    json_decref(body);
    if (rc == BG_CLI_OK && c->json)
        bg_cli_print_raw(&r);
    else if (rc == BG_CLI_OK)
        validation_text(j);
    if (rc == BG_CLI_OK && !json_is_true(json_object_get(j, "valid")))
        rc = BG_CLI_FAIL;
    json_decref(j);
    bg_cli_resp_free(&r);
    return rc;
}

#define LICENSE_RUN(fname, cmd, minp, maxp, fn, ...)                                               \
    static int fname(int argc, char **argv)                                                        \
    {                                                                                              \
        bg_cli_opt o[] = {__VA_ARGS__ BG_CLI_COMMON_OPTS};                                         \
        return bg_cli_run(argc, argv, o, N(o), cmd, license_help, minp, maxp, true, fn);           \
    }

LICENSE_RUN(run_license_issue, "license issue", 0, 0, license_issue, BG_OPT_V("--org"),
            BG_OPT_V("--tier"), BG_OPT_L("--domain"), BG_OPT_L("--feature"),
            BG_OPT_V("--max-branches"), BG_OPT_V("--max-users"), BG_OPT_V("--expires"),
            BG_OPT_V("--valid-for"), BG_OPT_V("--not-before"), )
LICENSE_RUN(run_license_show, "license show", 1, 1, license_show, )
LICENSE_RUN(run_license_revoke, "license revoke", 1, 1, license_revoke, )
LICENSE_RUN(run_license_validate, "license validate", 0, 0, license_validate, BG_OPT_V("--domain"),
            BG_OPT_V("--key"), BG_OPT_V("--key-file"), )

int bg_cli_cmd_license(int argc, char **argv)
{
    static const bg_cli_sub subs[] = {
        {"issue", run_license_issue},
        {"show", run_license_show},
        {"revoke", run_license_revoke},
        {"validate", run_license_validate},
    };
    return bg_cli_group(argc, argv, "license", subs, N(subs), license_help);
}

const char *bg_cli_license_help(void)
{
    return license_help;
}
