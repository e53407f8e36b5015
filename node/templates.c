/* node/templates.c — the bundled media templates: every .json file of templates.dir
 * is loaded and checked at start; any error stops start-up. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_internal.h"
#include "proto/json.h"
#include "proto/log.h"
#include "proto/mem.h"
#include "proto/template.h"

#define TEMPLATE_FILE_MAX (256u << 10)

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.json names of dir, sorted (so the order does not depend on the
 * file system). malloc'ed. */
static char **json_files(DIR *d, size_t *n)
{
    char **names = NULL;
    size_t len = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || e->d_name[0] == '.')
            continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            names = bg_xrealloc(names, cap * sizeof(char *));
        }
        names[len++] = bg_xstrdup(e->d_name);
    }
    qsort(names, len, sizeof(char *), by_name);
    *n = len;
    return names;
}

static json_t *load_one(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "%s", strerror(errno));
        return NULL;
    }
    char *buf = bg_xmalloc(TEMPLATE_FILE_MAX + 1);
    size_t len = fread(buf, 1, TEMPLATE_FILE_MAX + 1, f);
    fclose(f);
    json_t *t = NULL;
    bg_json_err je;
    if (len > TEMPLATE_FILE_MAX)
        snprintf(err, cap, "larger than %u bytes", TEMPLATE_FILE_MAX);
    else if (bg_json_parse_object(buf, len, &t, &je) != BG_OK)
        snprintf(err, cap, "%s", je.message);
    else if (bg_template_check(t, NULL, NULL, err, cap) != BG_OK) {
        json_decref(t);
        t = NULL;
    }
    free(buf);
    return t;
}

bg_err bg_node_templates_load(bg_node *n)
{
    n->templates = json_array();
    DIR *d = opendir(n->cfg.templates_dir);
    if (d == NULL) {
        /* The default folder may simply not be there (an install without
         * bundled templates); a folder an operator named must be. */
        bool def = strcmp(n->cfg.templates_dir, "templates") == 0;
        bg_log(def ? BG_LOG_WARN : BG_LOG_ERROR, NULL, "config key 'templates.dir': cannot open %s: %s",
               n->cfg.templates_dir, strerror(errno));
        return def ? BG_OK : BG_EINVAL;
    }
    size_t cnt = 0;
    char **names = json_files(d, &cnt);
    closedir(d);
    bg_err e = BG_OK;
    for (size_t i = 0; i < cnt && e == BG_OK; i++) {
        char path[2200], err[300] = "";
        snprintf(path, sizeof(path), "%s/%s", n->cfg.templates_dir, names[i]);
        json_t *t = load_one(path, err, sizeof(err));
        const char *id = json_string_value(json_object_get(t, "id"));
        for (size_t k = 0; t != NULL && k < json_array_size(n->templates); k++)
            if (strcmp(json_string_value(json_object_get(json_array_get(n->templates, k), "id")), id) == 0)
                snprintf(err, sizeof(err), "template '%s' is defined twice", id);
        if (t == NULL || err[0] != '\0') {
            bg_log(BG_LOG_ERROR, NULL, "invalid template file %s: %s", path, err);
            json_decref(t);
            e = BG_EINVAL;
        } else {
            json_array_append_new(n->templates, t);
        }
    }
    for (size_t i = 0; i < cnt; i++)
        free(names[i]);
    free(names);
    if (e == BG_OK)
        bg_log(BG_LOG_INFO, NULL, "loaded %zu template(s) from %s", json_array_size(n->templates),
               n->cfg.templates_dir);
    return e;
}

const json_t *bg_node_templates(const bg_node *n)
{
    return n->templates;
}
