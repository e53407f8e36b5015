/* node/pinger.c — the health pinger: every peers.ping_interval_ms, ping
 * every active peer in parallel and record state, RTT and clock skew. A
 * background thread with its own registry connection. */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "node/branches.h"
#include "node_internal.h"
#include "proto/log.h"

static void *pinger_main(void *arg)
{
    bg_node *n = arg;
    char dbpath[4200];
    bg_registry *reg = NULL;
    bg_registry_opts ro = {.busy_timeout_ms = (int)n->cfg.db_busy_timeout_ms};
    if (!bg_path_join(dbpath, sizeof(dbpath), n->data_dir, BG_DB_FILE) ||
        bg_registry_open(dbpath, &ro, &reg) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "pinger: cannot open the registry; pings disabled");
        return NULL;
    }
    pthread_mutex_lock(&n->pinger_mu);
    while (!n->pinger_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ms = n->cfg.peers_ping_interval_ms;
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!n->pinger_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&n->pinger_cv, &n->pinger_mu, &until);
        if (n->pinger_stop)
            break;
        pthread_mutex_unlock(&n->pinger_mu);
        json_decref(bg_node_branch_ping_all(n, reg, NULL));
        pthread_mutex_lock(&n->pinger_mu);
    }
    pthread_mutex_unlock(&n->pinger_mu);
    bg_registry_close(reg);
    return NULL;
}

void bg_node_pinger_start(bg_node *n)
{
    pthread_mutex_init(&n->pinger_mu, NULL);
    pthread_cond_init(&n->pinger_cv, NULL);
    n->pinger_stop = false;
    if (pthread_create(&n->pinger, NULL, pinger_main, n) != 0) {
        bg_log(BG_LOG_ERROR, NULL, "cannot start the pinger thread");
        return;
    }
    n->pinger_started = true;
}

void bg_node_pinger_stop(bg_node *n)
{
    if (!n->pinger_started)
        return;
    pthread_mutex_lock(&n->pinger_mu);
    n->pinger_stop = true;
    pthread_cond_signal(&n->pinger_cv);
    pthread_mutex_unlock(&n->pinger_mu);
    pthread_join(n->pinger, NULL);
    pthread_mutex_destroy(&n->pinger_mu);
    pthread_cond_destroy(&n->pinger_cv);
    n->pinger_started = false;
}
