/*
 * gateway/dashboard/dashboard.h — the operator dashboard's static files,
 * compiled into the binary at build time.
 *
 * The sources are index.html, dashboard.css and dashboard.js in this
 * folder; embed.cmake turns each into a byte array in a generated C file
 * (build tree), so a branch serves its dashboard without reading files at
 * run time. The arrays are not NUL-terminated: use the _len values.
 * Read-only, any thread. Served by gateway/handlers/system.c.
 */
#ifndef BG_GATEWAY_DASHBOARD_H
#define BG_GATEWAY_DASHBOARD_H

#include <stddef.h>

extern const unsigned char bg_dashboard_index_html[];
extern const size_t bg_dashboard_index_html_len;
extern const unsigned char bg_dashboard_dashboard_css[];
extern const size_t bg_dashboard_dashboard_css_len;
extern const unsigned char bg_dashboard_dashboard_js[];
extern const size_t bg_dashboard_dashboard_js_len;

#endif
