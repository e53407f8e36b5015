/*
 * gateway/handlers/handlers.h — every route handler, one file per
 * resource. A handler parses, relies on the middleware for authorization,
 * acts (in-memory, or through a worker job for anything that touches the
 * registry) and responds.
 */
#ifndef BG_GATEWAY_HANDLERS_H
#define BG_GATEWAY_HANDLERS_H

#include "gateway/gateway.h"

/* system.c */
/* GET /: the dashboard for browsers (Accept lists text/html), otherwise the
 * JSON service description. */
void bg_h_index(bg_reqctx *rc);
/* GET /dashboard.js, GET /dashboard.css: the dashboard's script and style. */
void bg_h_dashboard_js(bg_reqctx *rc);
void bg_h_dashboard_css(bg_reqctx *rc);
void bg_h_healthz(bg_reqctx *rc);
void bg_h_readyz(bg_reqctx *rc);
void bg_h_metrics(bg_reqctx *rc);

/* tokens.c */
void bg_h_tokens_list(bg_reqctx *rc);
void bg_h_tokens_create(bg_reqctx *rc);
void bg_h_tokens_revoke(bg_reqctx *rc);

/* audit.c */
void bg_h_audit_list(bg_reqctx *rc);

/* branches.c */
void bg_h_branches_list(bg_reqctx *rc);
void bg_h_branches_create(bg_reqctx *rc);
void bg_h_branches_get(bg_reqctx *rc);
void bg_h_branches_patch(bg_reqctx *rc);
void bg_h_branches_delete(bg_reqctx *rc);
void bg_h_branches_ping(bg_reqctx *rc);
void bg_h_branches_status(bg_reqctx *rc);

/* crossbranch.c */
void bg_h_cross_health(bg_reqctx *rc);
void bg_h_cross_test_communication(bg_reqctx *rc);

/* orgs.c */
void bg_h_orgs_list(bg_reqctx *rc);
void bg_h_orgs_create(bg_reqctx *rc);
void bg_h_orgs_get(bg_reqctx *rc);
void bg_h_orgs_patch(bg_reqctx *rc);
void bg_h_orgs_rotate_secret(bg_reqctx *rc);
void bg_h_orgs_sync(bg_reqctx *rc);
void bg_h_orgs_share(bg_reqctx *rc);
void bg_h_users_list(bg_reqctx *rc);
void bg_h_users_create(bg_reqctx *rc);
void bg_h_users_get(bg_reqctx *rc);
void bg_h_users_delete(bg_reqctx *rc);
void bg_h_branches_resync(bg_reqctx *rc);
void bg_h_cross_sync_org(bg_reqctx *rc);
void bg_h_cross_share(bg_reqctx *rc);
void bg_h_templates_list(bg_reqctx *rc);
void bg_h_templates_get(bg_reqctx *rc);

/* outbox.c */
void bg_h_outbox_list(bg_reqctx *rc);
void bg_h_outbox_requeue(bg_reqctx *rc);

/* licenses.c */
void bg_h_licenses_issue(bg_reqctx *rc);
void bg_h_licenses_get(bg_reqctx *rc);
void bg_h_licenses_revoke(bg_reqctx *rc);
void bg_h_licenses_validate(bg_reqctx *rc);
void bg_h_cross_validate_license(bg_reqctx *rc);

/* auth.c */
void bg_h_auth_login(bg_reqctx *rc);
void bg_h_cross_user_auth(bg_reqctx *rc);

/* media.c */
struct bg_actor;
/* The pipeline's view of the caller (malloc'ed; the caller frees). */
struct bg_actor *bg_h_actor(bg_reqctx *rc);
void bg_h_assemblies_create(bg_reqctx *rc);
void bg_h_assemblies_list(bg_reqctx *rc);
void bg_h_assemblies_get(bg_reqctx *rc);
void bg_h_assemblies_cancel(bg_reqctx *rc);
void bg_h_assemblies_replay(bg_reqctx *rc);
void bg_h_status_compat(bg_reqctx *rc);
void bg_h_files_get(bg_reqctx *rc);
void bg_h_jobs_list(bg_reqctx *rc);
void bg_h_jobs_requeue(bg_reqctx *rc);

/* uploads.c (tus) */
void bg_h_uploads_options(bg_reqctx *rc);
void bg_h_uploads_create(bg_reqctx *rc);
void bg_h_uploads_head(bg_reqctx *rc);
void bg_h_uploads_patch(bg_reqctx *rc);
void bg_h_uploads_delete(bg_reqctx *rc);

/* stream.c (SSE) */
void bg_h_stream(bg_reqctx *rc);

#endif
