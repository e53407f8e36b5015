/* node/events.c — stored progress events and their live sink.
 *
 * An event is a row written in the transaction of the change it reports,
 * so a stream that resumes from the database never misses one. Live
 * streams learn of events through the sink right after the commit. Event
 * ids come from AUTOINCREMENT in commit order; the event lock, taken before
 * BEGIN and released after the sink has run, keeps two writers' events
 * from reaching the sink out of order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_internal.h"
#include "proto/log.h"
#include "proto/mem.h"

void bg_pl_init(bg_node *n)
{
    struct pipeline_state *p = bg_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->ev_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    n->pipe = p;
}

static void drop_pending(struct pipeline_state *p)
{
    for (size_t i = 0; i < p->npending; i++)
        free(p->pending[i].data);
    p->npending = 0;
}

void bg_pl_free(bg_node *n)
{
    struct pipeline_state *p = n->pipe;
    if (p == NULL)
        return;
    drop_pending(p);
    free(p->pending);
    free(p->locked);
    free(p->workers);
    free(p->running);
    pthread_mutex_destroy(&p->ev_mu);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
    n->pipe = NULL;
}

void bg_pipeline_set_sink(bg_node *n, bg_event_sink_fn fn, void *ud)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->ev_mu);
    p->sink = fn;
    p->sink_ud = ud;
    pthread_mutex_unlock(&p->ev_mu);
}

bg_err bg_pl_tx_begin(bg_node *n, bg_registry *reg)
{
    struct pipeline_state *p = n->pipe;
    pthread_mutex_lock(&p->ev_mu);
    bg_err e = bg_registry_begin(reg);
    if (e != BG_OK)
        pthread_mutex_unlock(&p->ev_mu);
    return e;
}

bg_err bg_pl_tx_commit(bg_node *n, bg_registry *reg)
{
    struct pipeline_state *p = n->pipe;
    bg_err e = bg_registry_commit(reg);
    if (e != BG_OK) {
        bg_registry_rollback(reg);
    } else if (p->sink != NULL) {
        for (size_t i = 0; i < p->npending; i++)
            p->sink(p->sink_ud, &p->pending[i]);
    }
    drop_pending(p);
    pthread_mutex_unlock(&p->ev_mu);
    return e;
}

void bg_pl_tx_rollback(bg_node *n, bg_registry *reg)
{
    struct pipeline_state *p = n->pipe;
    bg_registry_rollback(reg);
    drop_pending(p);
    pthread_mutex_unlock(&p->ev_mu);
}

bg_err bg_pl_event(bg_node *n, bg_registry *reg, const char *assembly_id, const char *org,
                   const char *name, json_t *data)
{
    struct pipeline_state *p = n->pipe;
    if (data == NULL)
        data = json_object();
    json_object_set_new(data, "assembly_id", json_string(assembly_id));
    bg_event_row ev;
    memset(&ev, 0, sizeof(ev));
    bg_strlcpy(ev.assembly_id, assembly_id, sizeof(ev.assembly_id));
    bg_strlcpy(ev.organization_id, org, sizeof(ev.organization_id));
    bg_strlcpy(ev.name, name, sizeof(ev.name));
    ev.data = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    ev.created_ms = bg_now_ms();
    bg_err e = bg_registry_event_add(reg, &ev);
    if (e != BG_OK) {
        free(ev.data);
        return e;
    }
    if (p->npending == p->cap_pending) {
        p->cap_pending = p->cap_pending ? p->cap_pending * 2 : 8;
        p->pending = bg_xrealloc(p->pending, p->cap_pending * sizeof(bg_event_row));
    }
    p->pending[p->npending++] = ev;
    return BG_OK;
}

bg_err bg_pl_nerr(bg_node_err *ne, bg_err e, const char *code, const char *msg)
{
    ne->code = code;
    snprintf(ne->message, sizeof(ne->message), "%s", msg);
    return e;
}

bg_err bg_pl_db_err(bg_node_err *ne, bg_registry *reg, bg_err e)
{
    ne->code = NULL;
    snprintf(ne->message, sizeof(ne->message), "registry: %s", bg_registry_errmsg(reg));
    return e;
}

bool bg_pipeline_event_terminal(const char *name)
{
    return strcmp(name, "assembly:completed") == 0 || strcmp(name, "assembly:failed") == 0 ||
           strcmp(name, "assembly:canceled") == 0;
}

bg_err bg_pipeline_events(bg_node *n, bg_registry *reg, const bg_actor *who,
                          const char *assembly_id, int64_t after, size_t limit,
                          bg_event_row **out, size_t *count, bg_node_err *ne)
{
    (void)n;
    const char *org = who->all_orgs ? NULL : who->org;
    if (assembly_id != NULL) {
        bg_assembly_row a;
        bg_err e = bg_registry_assembly_get(reg, assembly_id, org, &a);
        if (e == BG_ENOTFOUND)
            return bg_pl_nerr(ne, e, "ASSEMBLY_NOT_FOUND", "no such assembly");
        if (e != BG_OK)
            return bg_pl_db_err(ne, reg, e);
        bg_registry_assembly_clear(&a);
    }
    bg_err e = bg_registry_event_list(reg, assembly_id, org, after, limit, out, count);
    return e == BG_OK ? e : bg_pl_db_err(ne, reg, e);
}
