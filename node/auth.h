/*
 * node/auth.h — user login: argon2id verification at the user's home
 * branch (here, or at the home branch over an authenticated peer call),
 * HS256 tokens signed with a key derived from master.key, and per-user and
 * per-address login rate limits.
 */
#ifndef BG_NODE_AUTH_H
#define BG_NODE_AUTH_H

#include <jansson.h>
#include <stdbool.h>

#include "node/branches.h"
#include "node/node.h"
#include "registry/registry.h"

/* A login in progress. */
typedef struct bg_login {
    char email[255];
    char organization_id[BG_UUID_LEN + 1];
    bool done;          /* result final */
    int status;         /* HTTP status of the final answer */
    const char *code;   /* error code when status != 200 */
    json_t *result;     /* {"token","user"} on success */
    bg_peer_request home_call; /* when !done: the question for the home branch */
    bg_user user;       /* the local copy of the user */
} bg_login;

/* Stage 1 (worker): finds the user; verifies the password here when this
 * branch is the user's home, otherwise prepares the call to the home
 * branch. Unknown users cost the same argon2id verification as known
 * ones. password is not kept. */
void bg_node_login_start(bg_node *n, bg_registry *reg, const char *email, const char *password,
                         const char *org, bg_login *l);

/* Stage 3 (worker): the home branch's answer (or failure to answer). */
void bg_node_login_finish(bg_node *n, bg_login *l, bg_peer_result *res);

void bg_node_login_clear(bg_login *l);

/* The receiving side of cross-branch/user-authentication (worker):
 * *status 200 {"authenticated":true,"user":{...}} or 401. */
json_t *bg_node_user_authenticate(bg_node *n, bg_registry *reg, const char *email,
                                  const char *password, const char *org, int *status);

/* A user token's claims if the token verifies (any thread). Errors:
 * BG_EAUTH. */
typedef struct bg_user_claims {
    char sub[BG_UUID_LEN + 1];
    char org[BG_UUID_LEN + 1];
    char role[8];
    char branch[64];
} bg_user_claims;
bg_err bg_node_token_verify(bg_node *n, const char *token, size_t len, bg_user_claims *out);

/* Login rate limit per key ("user:<org>:<email>", "addr:<ip>"): 0 to go
 * ahead, else seconds until a retry. Any thread. */
unsigned bg_node_login_ratelimit(bg_node *n, const char *key);

#endif
