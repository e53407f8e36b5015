/* gateway/server.c — listener, event-loop threads, signals and the
 * graceful drain (STACK-NOTES 4.2, 4.10 and pitfalls P9-P13). */
#include <stdlib.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "node/pipeline.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/parse.h"
#include "proto/url.h"

/* Binds the listening socket and works out the URL it is reachable at. */
static int open_listener(const char *listen_spec, const char *scheme, char *url, size_t url_cap)
{
    char host[256];
    uint16_t port;
    if (bg_parse_hostport(listen_spec, host, sizeof(host), &port) != BG_OK)
        return -1;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, H2O_SOMAXCONN) != 0) {
        if (fd >= 0)
            close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "127.0.0.1";
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(url, url_cap, "%s://[%s]:%u", scheme, ip, ntohs(s6->sin6_port));
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        snprintf(url, url_cap, "%s://%s:%u", scheme, ip, ntohs(s4->sin_port));
    }
    return fd;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_accept_ctx_t *actx = listener->data;
    for (int i = 0; i < 16; i++) {
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL)
            break;
        h2o_accept(actx, sock);
    }
}

bool bg_gw_is_own_url(bg_gateway *gw, const char *url, size_t len)
{
    char norm[BG_URL_MAX], other[BG_URL_MAX];
    if (bg_url_normalize(url, len, norm, sizeof(norm)) != BG_OK)
        return false;
    const char *mine[] = {gw->own_url_norm, gw->listen_url, gw->tls_url};
    for (size_t i = 0; i < 3; i++) {
        if (mine[i][0] == '\0')
            continue;
        if (bg_url_normalize(mine[i], strlen(mine[i]), other, sizeof(other)) == BG_OK &&
            strcmp(other, norm) == 0)
            return true;
    }
    return false;
}

/* Loads the certificate and key of the TLS listener and offers h2 and
 * http/1.1 through ALPN. */
static SSL_CTX *make_ssl_ctx(const bg_config *c)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1) {
        bg_log(BG_LOG_ERROR, NULL, "config key 'tls.cert': cannot load %s", c->tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        bg_log(BG_LOG_ERROR, NULL, "config key 'tls.key': cannot load %s or it does not match "
                                   "tls.cert", c->tls_key);
        SSL_CTX_free(ctx);
        return NULL;
    }
#if H2O_USE_ALPN
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
#endif
    return ctx;
}

static h2o_socket_t *watch(bg_gw_loop *l, int shared_fd, h2o_accept_ctx_t *actx)
{
    int fd = dup(shared_fd);
    if (fd < 0) {
        bg_log(BG_LOG_ERROR, NULL, "cannot dup a listening socket: %s", strerror(errno));
        abort();
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(l->ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = actx;
    h2o_socket_read_start(sock, on_accept);
    return sock;
}

static void unwatch(h2o_socket_t **sock)
{
    if (*sock == NULL)
        return;
    h2o_socket_read_stop(*sock);
    h2o_socket_close(*sock);
    *sock = NULL;
}

static void on_wake(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    (void)recv;
    /* Only ever woken with NULL messages; nothing to unlink. */
    while (!h2o_linklist_is_empty(messages))
        h2o_linklist_unlink(messages->next);
}

static bool has_connections(h2o_context_t *ctx)
{
    return !h2o_linklist_is_empty(&ctx->http1._conns) ||
           !h2o_linklist_is_empty(&ctx->http2._conns);
}

/* After the stop flag: stop accepting, let in-flight requests and worker
 * replies finish until the drain deadline, and tear down only if fully
 * drained (the asserts of P9/P10 punish anything else). */
static void drain(bg_gw_loop *l)
{
    h2o_evloop_t *loop = l->ctx.loop;
    unwatch(&l->listener);
    unwatch(&l->tls_listener);
    h2o_context_request_shutdown(&l->ctx);
    bg_gw_streams_end_all(l);
    /* h2o 2.2.5 cannot close idle HTTP/1 keep-alive connections (P11), and
     * peers keep theirs open. So the drain waits for requests in flight
     * and worker replies up to the deadline, but gives connections with
     * nothing in flight only shutdown.idle_grace_ms to start or finish
     * sending a request. */
    uint64_t start = h2o_now(loop);
    uint64_t deadline = start + (uint64_t)l->gw->cfg->shutdown_drain_ms;
    uint64_t idle_until = start + (uint64_t)l->gw->cfg->shutdown_idle_grace_ms;
    for (;;) {
        uint64_t now = h2o_now(loop);
        bool busy = l->inflight > 0 || l->pending_jobs > 0 ||
                    __atomic_load_n(&l->events_pending, __ATOMIC_SEQ_CST) > 0;
        if (now >= deadline || (!busy && (!has_connections(&l->ctx) || now >= idle_until)))
            break;
        h2o_evloop_run(loop, 50);
    }
    if (l->inflight > 0 || l->pending_jobs > 0 ||
        __atomic_load_n(&l->events_pending, __ATOMIC_SEQ_CST) > 0) {
        l->drain_result = 2; /* deadline passed with work in flight */
        return;
    }
    if (has_connections(&l->ctx)) {
        l->drain_result = 1; /* only idle connections left */
        return;              /* the process exits without disposing; see bg_gateway_run */
    }
    h2o_timeout_unlink(&l->ctx.http2._graceful_shutdown_timeout);
    h2o_multithread_unregister_receiver(l->ctx.queue, &l->jobs_recv);
    h2o_multithread_unregister_receiver(l->ctx.queue, &l->wake_recv);
    h2o_multithread_unregister_receiver(l->ctx.queue, &l->events_recv);
    h2o_timeout_dispose(loop, &l->sse_heartbeat);
    h2o_context_dispose(&l->ctx);
    h2o_evloop_run(loop, 0);
    h2o_evloop_destroy(loop);
}

static void *loop_main(void *arg)
{
    bg_gw_loop *l = arg;
    bg_gateway *gw = l->gw;
    h2o_context_init(&l->ctx, h2o_evloop_create(), &gw->h2o_conf);
    l->accept_ctx.ctx = &l->ctx;
    l->accept_ctx.hosts = gw->h2o_conf.hosts;
    h2o_multithread_register_receiver(l->ctx.queue, &l->jobs_recv, bg_gw_on_job_replies);
    h2o_multithread_register_receiver(l->ctx.queue, &l->wake_recv, on_wake);
    h2o_multithread_register_receiver(l->ctx.queue, &l->events_recv, bg_gw_on_events);
    h2o_linklist_init_anchor(&l->streams);
    h2o_timeout_init(l->ctx.loop, &l->sse_heartbeat, (uint64_t)gw->cfg->sse_heartbeat_s * 1000);
    l->listener = watch(l, gw->listen_fd, &l->accept_ctx);
    if (gw->tls_fd >= 0) {
        l->tls_accept_ctx = l->accept_ctx;
        l->tls_accept_ctx.ssl_ctx = gw->ssl_ctx;
        l->tls_listener = watch(l, gw->tls_fd, &l->tls_accept_ctx);
    }
    pthread_barrier_wait(&gw->started);
    while (!gw->stopping)
        h2o_evloop_run(l->ctx.loop, INT32_MAX);
    drain(l);
    return NULL;
}

static void setup_h2o(bg_gateway *gw, char **route_names)
{
    h2o_config_init(&gw->h2o_conf);
    gw->h2o_conf.server_name = h2o_iovec_init(H2O_STRLIT("branchgate"));
    gw->h2o_conf.http1.req_timeout = (uint64_t)gw->cfg->http_req_timeout_ms;
    size_t max_limit = (size_t)gw->cfg->http_max_body_bytes;
    if ((size_t)gw->cfg->uploads_chunk_max_bytes > max_limit)
        max_limit = (size_t)gw->cfg->uploads_chunk_max_bytes;
    for (size_t i = 0; i < gw->nroutes; i++) {
        if (gw->routes[i].body_limit > max_limit)
            max_limit = gw->routes[i].body_limit;
        size_t len = strlen(gw->routes[i].method) + strlen(gw->routes[i].pattern) + 2;
        route_names[i] = bg_xmalloc(len);
        snprintf(route_names[i], len, "%s %s", gw->routes[i].method, gw->routes[i].pattern);
    }
    /* Bodies a little over a route's cap still reach the middleware and get
     * the JSON 413; h2o itself refuses anything past this with its own. */
    gw->h2o_conf.max_request_entity_size = max_limit + (1u << 20);
    h2o_hostconf_t *host =
        h2o_config_register_host(&gw->h2o_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(pc, sizeof(*h));
    h->on_req = bg_gw_on_req;
}

/* The optional TLS listener (tls.listen, tls.cert, tls.key). */
static bool open_tls(bg_gateway *gw)
{
    const bg_config *c = gw->cfg;
    if (c->tls_listen[0] == '\0')
        return true;
    if (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0') {
        bg_log(BG_LOG_ERROR, NULL, "config key 'tls.cert'/'tls.key': both are required with tls.listen");
        return false;
    }
    gw->ssl_ctx = make_ssl_ctx(c);
    if (gw->ssl_ctx == NULL)
        return false;
    gw->tls_fd = open_listener(c->tls_listen, "https", gw->tls_url, sizeof(gw->tls_url));
    if (gw->tls_fd < 0) {
        bg_log(BG_LOG_ERROR, NULL, "config key 'tls.listen': cannot listen on %s: %s",
               c->tls_listen, strerror(errno));
        SSL_CTX_free(gw->ssl_ctx);
        return false;
    }
    return true;
}

static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

void bg_gateway_block_signals(void)
{
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Blocks until a stop signal; every thread inherits the blocked mask. */
static int wait_for_signal(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

int bg_gateway_run(bg_node *node)
{
    bg_gateway *gw = bg_xcalloc(1, sizeof(*gw));
    gw->node = node;
    gw->cfg = bg_node_config(node);
    gw->routes = bg_gw_routes(&gw->nroutes);
    gw->tls_fd = -1;
    gw->listen_fd =
        open_listener(gw->cfg->listen, "http", gw->listen_url, sizeof(gw->listen_url));
    if (gw->listen_fd < 0) {
        bg_log(BG_LOG_ERROR, NULL, "config key 'listen': cannot listen on %s: %s", gw->cfg->listen,
               strerror(errno));
        free(gw);
        return 1;
    }
    if (!open_tls(gw)) {
        close(gw->listen_fd);
        free(gw);
        return 1;
    }
    if (bg_node_url(node)[0] == '\0')
        bg_node_set_url(node, gw->listen_url);
    if (bg_url_normalize(bg_node_url(node), strlen(bg_node_url(node)), gw->own_url_norm,
                         sizeof(gw->own_url_norm)) != BG_OK)
        gw->own_url_norm[0] = '\0';
    bg_gw_health_prepare(gw);
    if (bg_node_start(node) != BG_OK) {
        bg_log(BG_LOG_ERROR, NULL, "cannot start the peer client");
        return 1;
    }
    char **names = bg_xcalloc(gw->nroutes, sizeof(char *));
    setup_h2o(gw, names);
    gw->metrics = bg_metrics_create((const char *const *)names, gw->nroutes);

    sigset_t set;
    stop_signals(&set);
    bg_gateway_block_signals();

    gw->nloops = (int)gw->cfg->http_threads;
    gw->loops = bg_xcalloc((size_t)gw->nloops, sizeof(bg_gw_loop));
    pthread_barrier_init(&gw->started, NULL, (unsigned)gw->nloops + 1);
    for (int i = 0; i < gw->nloops; i++) {
        gw->loops[i].gw = gw;
        gw->loops[i].index = i;
        h2o_multithread_create_thread(&gw->loops[i].thread, NULL, loop_main, &gw->loops[i]);
    }
    pthread_barrier_wait(&gw->started);
    bg_pipeline_set_sink(node, bg_gw_event_sink, gw);
    bg_node_publish_listen_url(node, gw->listen_url, gw->tls_url);
    bg_log_fields(BG_LOG_INFO, "listening",
                  json_pack("{s:s,s:s,s:s,s:s,s:i}", "url", gw->listen_url, "tls_url",
                            gw->tls_url, "branch", gw->cfg->branch_name, "branch_url",
                            bg_node_url(node), "threads", gw->nloops));

    int sig = wait_for_signal(&set);
    bg_log(BG_LOG_INFO, NULL, "received %s; draining for up to %lld ms",
           sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM", (long long)gw->cfg->shutdown_drain_ms);
    bg_pipeline_set_sink(node, NULL, NULL);
    gw->stopping = 1;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (int i = 0; i < gw->nloops; i++)
        h2o_multithread_send_message(&gw->loops[i].wake_recv, NULL);
    int worst = 0;
    for (int i = 0; i < gw->nloops; i++) {
        pthread_join(gw->loops[i].thread, NULL);
        if (gw->loops[i].drain_result > worst)
            worst = gw->loops[i].drain_result;
    }
    bg_node_unpublish_listen_url(node);
    if (worst != 0) {
        /* Contexts with live connections cannot be disposed (P10); what was
         * acknowledged is already durable, so leave at once. */
        if (worst == 2)
            bg_log(BG_LOG_WARN, NULL, "drain deadline passed with requests in flight; exiting");
        else
            bg_log(BG_LOG_INFO, NULL, "stopped; closing idle keep-alive connections");
        _exit(0);
    }
    close(gw->listen_fd);
    if (gw->tls_fd >= 0)
        close(gw->tls_fd);
    if (gw->ssl_ctx != NULL)
        SSL_CTX_free(gw->ssl_ctx);
    h2o_config_dispose(&gw->h2o_conf);
    free(gw->health_prefix);
    bg_metrics_destroy(gw->metrics);
    for (size_t i = 0; i < gw->nroutes; i++)
        free(names[i]);
    free(names);
    pthread_barrier_destroy(&gw->started);
    free(gw->loops);
    free(gw);
    bg_log(BG_LOG_INFO, NULL, "stopped");
    return 0;
}
