#include "url.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == ':';
}

bg_err bg_url_normalize(const char *in, size_t len, char *out, size_t cap)
{
    char buf[BG_URL_MAX];
    if (in == NULL || len == 0 || len >= sizeof(buf))
        return BG_EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)in[i] <= 0x20 || in[i] == 0x7f || in[i] == '?' || in[i] == '#' ||
            in[i] == '\\')
            return BG_EINVAL;
    size_t skip;
    bool https;
    if (len > 7 && strncasecmp(in, "http://", 7) == 0) {
        https = false;
        skip = 7;
    } else if (len > 8 && strncasecmp(in, "https://", 8) == 0) {
        https = true;
        skip = 8;
    } else {
        return BG_EINVAL;
    }
    const char *auth = in + skip, *end = in + len;
    const char *slash = memchr(auth, '/', (size_t)(end - auth));
    const char *auth_end = slash ? slash : end;
    if (memchr(auth, '@', (size_t)(auth_end - auth)) != NULL || auth_end == auth)
        return BG_EINVAL;
    /* host[:port] or [v6][:port] */
    const char *host = auth, *host_end, *port_s = NULL;
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(auth_end - auth));
        if (close == NULL || close == auth + 1)
            return BG_EINVAL;
        host_end = close + 1;
        if (host_end < auth_end) {
            if (*host_end != ':')
                return BG_EINVAL;
            port_s = host_end + 1;
        }
    } else {
        const char *colon = memchr(auth, ':', (size_t)(auth_end - auth));
        host_end = colon ? colon : auth_end;
        if (colon)
            port_s = colon + 1;
        if (host_end == host)
            return BG_EINVAL;
    }
    uint64_t port = https ? 443 : 80;
    if (port_s != NULL && bg_parse_u64(port_s, (size_t)(auth_end - port_s), 1, 65535, &port) != BG_OK)
        return BG_EINVAL;
    size_t n = (size_t)snprintf(buf, sizeof(buf), "%s://", https ? "https" : "http");
    for (const char *p = host; p < host_end; p++) {
        char c = lower(*p);
        if (!host_char(c) && c != '[' && c != ']')
            return BG_EINVAL;
        buf[n++] = c;
    }
    if (port != (https ? 443u : 80u))
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ":%u", (unsigned)port);
    size_t plen = (size_t)(end - auth_end);
    while (plen > 0 && auth_end[plen - 1] == '/')
        plen--;
    if (n + plen + 1 > sizeof(buf) || n + plen + 1 > cap)
        return BG_EINVAL;
    memcpy(buf + n, auth_end, plen);
    n += plen;
    buf[n] = '\0';
    memcpy(out, buf, n + 1);
    return BG_OK;
}

bg_err bg_url_host_port(const char *url, int *is_https, char *host, size_t cap, unsigned *port)
{
    char norm[BG_URL_MAX];
    if (bg_url_normalize(url, strlen(url), norm, sizeof(norm)) != BG_OK)
        return BG_EINVAL;
    bool https = strncmp(norm, "https://", 8) == 0;
    const char *h = norm + (https ? 8 : 7);
    const char *end = h + strcspn(h, "/");
    const char *hs = h, *he;
    const char *ps = NULL;
    if (*h == '[') {
        hs = h + 1;
        he = memchr(h, ']', (size_t)(end - h));
        if (he[1] == ':')
            ps = he + 2;
    } else {
        he = memchr(h, ':', (size_t)(end - h));
        if (he != NULL)
            ps = he + 1;
        else
            he = end;
    }
    if ((size_t)(he - hs) >= cap)
        return BG_EINVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    uint64_t p = https ? 443 : 80;
    if (ps != NULL && bg_parse_u64(ps, (size_t)(end - ps), 1, 65535, &p) != BG_OK)
        return BG_EINVAL;
    *is_https = https;
    *port = (unsigned)p;
    return BG_OK;
}
