/* gateway/dashboard/dashboard.js — the operator dashboard's behaviour.
 *
 * Plain browser JavaScript, no build step, no dependencies. Everything it
 * shows comes from this branch's own API, called with the admin token the
 * operator types in (kept in sessionStorage only, sent as a bearer token):
 *   GET /  (Accept: application/json), /healthz, /readyz   this branch
 *   GET /api/v1/branches, /api/v1/branches/{name}/status    peer table
 *   POST /api/v1/branches/{name}/ping                        ping button
 *   GET /api/v1/assemblies, GET /api/stream?branch=NAME      assemblies
 *   GET /api/v1/jobs?state=queued|running|dead, POST .../requeue
 * The stream needs the Authorization header, which EventSource cannot
 * send, so it is read with fetch() and parsed here (text/event-stream),
 * reconnecting with Last-Event-ID.
 *
 * Server data only ever reaches the page through textContent and
 * attributes set one by one (never parsed as HTML), so nothing it contains can
 * become markup or script. */
(function () {
  'use strict';

  var TOKEN_KEY = 'branchgate.adminToken';
  var POLL_MS = 5000;
  var MAX_BRANCHES = 500;
  var MAX_EVENTS = 60;
  var MAX_ASSEMBLIES = 25;
  var MAX_LINE_BUFFER = 1 << 20;

  var state = {
    token: null,
    self: null,          /* GET / as JSON */
    generation: 0,       /* bumped at sign-out: late answers are dropped */
    pollTimer: 0,
    refreshing: false,
    refreshAgain: false,
    branches: [],        /* [{branch, status}] */
    assemblies: [],
    filterKeys: '',
    stream: null,
    assembliesTimer: 0,
    progressItems: new Map()
  };

  function $(id) { return document.getElementById(id); }

  /* ---- errors ---- */

  function AuthError(message) { this.name = 'AuthError'; this.message = message; }
  AuthError.prototype = Object.create(Error.prototype);
  function StaleError() { this.name = 'StaleError'; this.message = 'stale'; }
  StaleError.prototype = Object.create(Error.prototype);
  function ApiError(status, code, message) {
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.message = message;
  }
  ApiError.prototype = Object.create(Error.prototype);

  function errorOf(body) {
    var e = body && typeof body === 'object' ? body.error : null;
    return e && typeof e === 'object' ? e : null;
  }

  /* ---- DOM helpers: text only ---- */

  var ATTRS = { 'class': 1, title: 1, scope: 1, type: 1, datetime: 1, role: 1, colspan: 1, hidden: 1 };

  /* el('td', {class: 'num', 'data-col': 'rtt'}, 'text', childNode, ...) */
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (ATTRS[k] || k.indexOf('aria-') === 0 || k.indexOf('data-') === 0)
          node.setAttribute(k, String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var kid = arguments[i];
      if (kid === null || kid === undefined) continue;
      node.append(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return node;
  }

  function setText(node, text) {
    var t = text === null || text === undefined ? '' : String(text);
    if (node.textContent !== t) node.textContent = t;
  }

  function setBadge(node, text, kind, dot) {
    setText(node, text);
    node.className = 'badge' + (kind ? ' badge-' + kind : '') + (dot ? ' dot' : '');
  }

  function show(node, visible) { node.hidden = !visible; }

  /* ---- formatting ---- */

  function pad2(n) { return n < 10 ? '0' + n : String(n); }

  function clock(d) {
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  function parseTime(iso) {
    if (typeof iso !== 'string' || iso === '') return null;
    var t = Date.parse(iso);
    return isNaN(t) ? null : new Date(t);
  }

  function ago(iso) {
    var d = parseTime(iso);
    if (!d) return '—';
    var s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return d.toISOString().slice(0, 10);
  }

  /* A <time> cell content: relative text, exact time in the tooltip. */
  function setTime(node, iso) {
    setText(node, ago(iso));
    var d = parseTime(iso);
    if (d) {
      node.setAttribute('title', d.toISOString().replace('.000Z', 'Z'));
      node.setAttribute('datetime', d.toISOString());
    } else {
      node.removeAttribute('title');
      node.removeAttribute('datetime');
    }
  }

  function fmtMs(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms <= 0) return '—';
    return (ms < 10 ? ms.toFixed(1) : String(Math.round(ms))) + ' ms';
  }

  function fmtBytes(n) {
    if (typeof n !== 'number' || !isFinite(n) || n < 0) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function fmtAge(s) {
    if (typeof s !== 'number' || !isFinite(s)) return '';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.round(s / 60) + ' min';
    return Math.round(s / 3600) + ' h';
  }

  function shortId(id) {
    var s = typeof id === 'string' ? id : '';
    return s.length > 12 ? s.slice(0, 12) + '…' : s;
  }

  function str(v) { return typeof v === 'string' ? v : (v === null || v === undefined ? '' : String(v)); }

  function typeLabel(t) {
    return t === 'top_branch' ? 'Top' : t === 'master_branch' ? 'Master' : str(t) || '—';
  }

  /* ---- HTTP ---- */

  function api(method, path) {
    var gen = state.generation;
    var headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    return fetch(path, {
      method: method, headers: headers, cache: 'no-store', credentials: 'omit', redirect: 'error'
    }).then(function (res) {
      var type = res.headers.get('content-type') || '';
      var body = type.indexOf('application/json') === 0 ? res.json().catch(function () { return null; })
                                                       : Promise.resolve(null);
      return body.then(function (json) {
        if (gen !== state.generation) throw new StaleError();
        var e = errorOf(json);
        if (res.status === 401 || res.status === 403)
          throw new AuthError(e && e.message ? str(e.message) : 'the token was not accepted');
        if (!res.ok)
          throw new ApiError(res.status, e ? str(e.code) : '', e && e.message ? str(e.message) : 'HTTP ' + res.status);
        return json;
      });
    }, function (err) {
      if (gen !== state.generation) throw new StaleError();
      if (err instanceof AuthError || err instanceof ApiError) throw err;
      throw new ApiError(0, 'NETWORK', 'cannot reach this branch');
    });
  }

  function branchPath(b, suffix) {
    var p = '/api/v1/branches/' + encodeURIComponent(str(b.branch_name)) + suffix;
    if (b.organization_id) p += '?organization_id=' + encodeURIComponent(str(b.organization_id));
    return p;
  }

  /* ---- rows kept across refreshes (focus stays on a button) ---- */

  function syncRows(tbody, items, keyOf, create, update) {
    var existing = new Map();
    Array.prototype.forEach.call(tbody.children, function (tr) { existing.set(tr.dataset.key, tr); });
    items.forEach(function (item, i) {
      var key = keyOf(item);
      var tr = existing.get(key);
      if (tr) existing.delete(key);
      else {
        tr = create(item);
        tr.dataset.key = key;
      }
      update(tr, item);
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    });
    existing.forEach(function (tr) { tr.remove(); });
  }

  function cell(tr, col) { return tr.querySelector('[data-col="' + col + '"]'); }

  /* ---- this branch ---- */

  function loadSelf() {
    return api('GET', '/').then(function (j) {
      if (!j || typeof j !== 'object') return;
      state.self = j;
      var name = str(j.branch);
      setText($('self-name'), name);
      setBadge($('self-type'), typeLabel(j.branch_type) + ' branch', j.branch_type === 'top_branch' ? 'top' : '');
      show($('self-type'), true);
      setText($('self-fact-name'), name);
      setText($('self-fact-type'), j.branch_type === 'top_branch' ? 'Top branch' : j.branch_type === 'master_branch' ? 'Master branch' : str(j.branch_type));
      setText($('self-fact-url'), str(j.branch_url));
      setText($('self-fact-version'), str(j.version));
      document.title = name + ' · branchgate';
      updateFilterOptions();
      renderBranchNote();
      if (state.token && !state.stream) startStream();
    }).catch(function (e) {
      if (e instanceof StaleError) return;
      setText($('self-name'), 'branch unavailable');
    });
  }

  function refreshHealth() {
    var node = $('self-fact-health');
    return api('GET', '/readyz').then(function () {
      node.replaceChildren(el('span', { 'class': 'badge badge-up dot' }, 'ready'));
    }, function (e) {
      if (e instanceof StaleError || e instanceof AuthError) throw e;
      node.replaceChildren(el('span', { 'class': 'badge badge-down dot', title: e.message }, 'not ready'));
    });
  }

  /* ---- branches ---- */

  function refreshBranches() {
    var list = [];
    function page(cursor) {
      var path = '/api/v1/branches?limit=500' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
      return api('GET', path).then(function (j) {
        var got = j && Array.isArray(j.branches) ? j.branches : [];
        list = list.concat(got.filter(function (b) { return b && typeof b === 'object'; }));
        var next = j && typeof j.next_cursor === 'string' ? j.next_cursor : '';
        return next && list.length < MAX_BRANCHES ? page(next) : list;
      });
    }
    return page('').then(function (branches) {
      return Promise.all(branches.map(function (b) {
        return api('GET', branchPath(b, '/status')).catch(function (e) {
          if (e instanceof StaleError || e instanceof AuthError) throw e;
          return { _error: e.message };
        });
      })).then(function (statuses) {
        state.branches = branches.map(function (b, i) { return { branch: b, status: statuses[i] || {} }; });
        state.branches.sort(function (a, b) {
          var ta = a.branch.branch_type === 'top_branch' ? 0 : 1;
          var tb = b.branch.branch_type === 'top_branch' ? 0 : 1;
          if (ta !== tb) return ta - tb;
          return str(a.branch.branch_name).localeCompare(str(b.branch.branch_name));
        });
        renderBranches();
        updateFilterOptions();
      });
    });
  }

  function createBranchRow(item) {
    var b = item.branch;
    var name = str(b.branch_name);
    var ping = el('button', { type: 'button', 'class': 'btn btn-small', 'aria-label': 'Ping ' + name }, 'Ping');
    ping.addEventListener('click', function () { pingBranch(ping, b); });
    return el('tr', { 'data-branch': name },
      el('th', { scope: 'row', 'data-col': 'name' },
        el('span', { 'class': 'branch-name' }), ' ',
        el('span', { 'class': 'badge', 'data-role': 'inactive', hidden: true }, 'inactive'),
        el('span', { 'class': 'branch-url' })),
      el('td', { 'data-col': 'type' }, el('span', { 'class': 'badge' })),
      el('td', { 'data-col': 'state' }, el('span', { 'class': 'badge' })),
      el('td', { 'data-col': 'ping' }, el('time')),
      el('td', { 'class': 'num', 'data-col': 'rtt' }),
      el('td', { 'data-col': 'breaker' }, el('span', { 'class': 'badge' })),
      el('td', { 'class': 'num', 'data-col': 'outbox' }),
      el('td', { 'class': 'actions', 'data-col': 'actions' }, ping));
  }

  function updateBranchRow(tr, item) {
    var b = item.branch, s = item.status || {};
    var nameCell = cell(tr, 'name');
    setText(nameCell.querySelector('.branch-name'), str(b.branch_name));
    setText(nameCell.querySelector('.branch-url'), str(b.branch_url));
    nameCell.querySelector('[data-role="inactive"]').hidden = b.is_active !== false;

    setBadge(cell(tr, 'type').firstChild, typeLabel(b.branch_type), b.branch_type === 'top_branch' ? 'top' : '');

    var st = str(s.state || b.state || 'unknown');
    var stateBadge = cell(tr, 'state').firstChild;
    setBadge(stateBadge, st, st === 'up' ? 'up' : st === 'down' ? 'down' : '', true);
    if (s.last_error) stateBadge.setAttribute('title', str(s.last_error));
    else if (s._error) stateBadge.setAttribute('title', 'status unavailable: ' + s._error);
    else stateBadge.removeAttribute('title');

    setTime(cell(tr, 'ping').firstChild, s.last_ping_at || b.last_ping_at);
    setText(cell(tr, 'rtt'), st === 'up' ? fmtMs(s.rtt_ms) : '—');

    var br = str(s.breaker);
    var brBadge = cell(tr, 'breaker').firstChild;
    if (br) setBadge(brBadge, br === 'half_open' ? 'half-open' : br, br === 'closed' ? 'ok' : br === 'open' ? 'error' : 'warn');
    else setBadge(brBadge, '—', '');

    var ob = s.outbox && typeof s.outbox === 'object' ? s.outbox : null;
    var outboxCell = cell(tr, 'outbox');
    if (!ob) {
      setText(outboxCell, '—');
      outboxCell.removeAttribute('title');
    } else {
      var text = String(Number(ob.depth) || 0);
      if (Number(ob.dead) > 0) text += ' · ' + Number(ob.dead) + ' dead';
      setText(outboxCell, text);
      var tip = [];
      if (typeof ob.oldest_pending_age_s === 'number') tip.push('oldest pending ' + fmtAge(ob.oldest_pending_age_s));
      if (ob.next_attempt_at) tip.push('next attempt ' + str(ob.next_attempt_at));
      if (ob.last_error) tip.push('last error: ' + str(ob.last_error));
      if (tip.length) outboxCell.setAttribute('title', tip.join('; '));
      else outboxCell.removeAttribute('title');
    }
  }

  function renderBranches() {
    var body = $('branches-body');
    syncRows(body, state.branches, function (it) {
      return str(it.branch.organization_id) + '/' + str(it.branch.branch_name);
    }, createBranchRow, updateBranchRow);
    show($('branches-empty'), state.branches.length === 0);
    show($('branches-wrap'), state.branches.length > 0);
    renderBranchNote();

    var top = state.self && state.self.branch_type === 'top_branch';
    var counted = state.branches.filter(function (it) {
      return it.branch.is_active !== false && (!top || it.branch.branch_type === 'master_branch');
    });
    var up = counted.filter(function (it) { return str(it.status.state || it.branch.state) === 'up'; }).length;
    setText($('stat-peers'), up + ' / ' + counted.length);
    setText($('stat-peers-label'), top ? 'Masters up' : 'Peers up');
  }

  function renderBranchNote() {
    if (!state.self) return;
    var masters = state.branches.filter(function (it) { return it.branch.branch_type === 'master_branch'; }).length;
    var text;
    if (state.self.branch_type === 'top_branch')
      text = 'This top branch and its ' + masters + (masters === 1 ? ' master branch' : ' master branches') + '.';
    else
      text = 'Peers of this master branch; its top branch is listed first.';
    setText($('branches-note'), text);
  }

  function pingBranch(button, b) {
    var name = str(b.branch_name);
    var announce = $('branches-announce');
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    setText(button, 'Pinging…');
    setText(announce, 'Pinging ' + name + '…');
    api('POST', branchPath(b, '/ping')).then(function (r) {
      r = r || {};
      if (r.ok === true)
        setText(announce, name + ' answered in ' + fmtMs(Number(r.latency_ms)) + '.');
      else
        setText(announce, name + ' did not answer: ' + (str(r.error) || 'HTTP ' + str(r.status)) + '.');
      refresh();
    }, function (e) {
      if (!handleAuth(e)) setText(announce, 'Ping of ' + name + ' failed: ' + e.message);
    }).then(function () {
      button.disabled = false;
      button.removeAttribute('aria-busy');
      setText(button, 'Ping');
    });
  }

  /* ---- branch filter ---- */

  function updateFilterOptions() {
    var select = $('branch-filter');
    var selfName = state.self ? str(state.self.branch) : '';
    var names = [];
    state.branches.forEach(function (it) {
      var n = str(it.branch.branch_name);
      if (n && n !== selfName && names.indexOf(n) < 0) names.push(n);
    });
    names.sort();
    var keys = selfName + '|' + names.join('|');
    if (keys === state.filterKeys) return;
    state.filterKeys = keys;
    var current = select.value;
    var options = [el('option', { 'data-all': 'true' }, 'All branches')];
    options[0].value = '';
    if (selfName) {
      var own = el('option', null, selfName + ' (this branch)');
      own.value = selfName;
      options.push(own);
    }
    names.forEach(function (n) {
      var o = el('option', null, n);
      o.value = n;
      options.push(o);
    });
    select.replaceChildren.apply(select, options);
    select.value = options.some(function (o) { return o.value === current; }) ? current : '';
  }

  function filterValue() { return $('branch-filter').value; }

  /* ---- assemblies ---- */

  function refreshAssemblies() {
    return api('GET', '/api/v1/assemblies?limit=100').then(function (j) {
      state.assemblies = j && Array.isArray(j.assemblies) ? j.assemblies.filter(function (a) {
        return a && typeof a === 'object';
      }) : [];
      renderAssemblies();
    });
  }

  function assemblyStatus(a) {
    if (a.error) return { text: str(a.error), kind: 'error' };
    switch (a.ok) {
    case 'ASSEMBLY_COMPLETED': return { text: 'completed', kind: 'ok' };
    case 'ASSEMBLY_EXECUTING': return { text: 'executing', kind: 'info' };
    case 'ASSEMBLY_UPLOADING': return { text: 'uploading', kind: '' };
    case 'ASSEMBLY_CANCELED': return { text: 'canceled', kind: '' };
    default: return { text: str(a.ok).replace(/^ASSEMBLY_/, '').toLowerCase() || 'unknown', kind: '' };
    }
  }

  function renderAssemblies() {
    var want = filterValue();
    var rows = state.assemblies.filter(function (a) { return !want || str(a.branch) === want; })
      .slice(0, MAX_ASSEMBLIES);
    syncRows($('assemblies-body'), rows, function (a) { return str(a.assembly_id); }, function (a) {
      return el('tr', { 'data-assembly': str(a.assembly_id) },
        el('td', { 'class': 'mono', 'data-col': 'id' }),
        el('td', { 'data-col': 'branch' }),
        el('td', { 'data-col': 'template' }),
        el('td', { 'data-col': 'status' }, el('span', { 'class': 'badge' })),
        el('td', { 'class': 'num', 'data-col': 'bytes' }),
        el('td', { 'data-col': 'updated' }, el('time')));
    }, function (tr, a) {
      var idCell = cell(tr, 'id');
      setText(idCell, shortId(a.assembly_id));
      idCell.setAttribute('title', str(a.assembly_id));
      setText(cell(tr, 'branch'), str(a.branch));
      setText(cell(tr, 'template'), str(a.template_id));
      var s = assemblyStatus(a);
      var badge = cell(tr, 'status').firstChild;
      setBadge(badge, s.text, s.kind);
      if (a.message) badge.setAttribute('title', str(a.message));
      else badge.removeAttribute('title');
      setText(cell(tr, 'bytes'), fmtBytes(a.bytes_received) + ' / ' + fmtBytes(a.bytes_expected));
      setTime(cell(tr, 'updated').firstChild, a.updated_at || a.created_at);
    });
    show($('assemblies-empty'), rows.length === 0);
    show($('assemblies-wrap'), rows.length > 0);
    setText($('assemblies-empty'), want ? 'No recent assemblies of ' + want + '.' : 'No assemblies yet.');
  }

  /* Events arrive in bursts: one list reload shortly after the last. */
  function assembliesSoon() {
    clearTimeout(state.assembliesTimer);
    state.assembliesTimer = setTimeout(function () {
      refreshAssemblies().catch(handleAuth);
    }, 700);
  }

  /* ---- live events (SSE over fetch) ---- */

  function setStreamState(text, kind) {
    var node = $('stream-state');
    setText(node, text);
    node.className = 'live-state' + (kind ? ' is-' + kind : '');
  }

  function eventDetail(name, d) {
    if (!d || typeof d !== 'object') return '';
    var parts = [];
    if (d.step) parts.push('step ' + str(d.step));
    if (typeof d.percent === 'number') parts.push(d.percent + '%');
    if (d.name) parts.push(str(d.name));
    if (typeof d.offset === 'number' && typeof d.length === 'number')
      parts.push(fmtBytes(d.offset) + ' of ' + fmtBytes(d.length));
    if (typeof d.results === 'number') parts.push(d.results + (d.results === 1 ? ' result' : ' results'));
    if (d.error) parts.push(str(d.error));
    if (d.message) parts.push(str(d.message));
    return parts.join(' · ');
  }

  function eventKind(name) {
    if (name === 'assembly:completed' || name === 'step:done') return 'ok';
    if (name === 'assembly:failed') return 'error';
    if (name === 'assembly:canceled') return '';
    return 'info';
  }

  function addEvent(name, data) {
    var list = $('events');
    var d = null;
    try { d = JSON.parse(data); } catch (_) { d = null; }
    var id = d && typeof d === 'object' ? str(d.assembly_id) : '';
    var detail = eventDetail(name, d);
    var now = clock(new Date());
    /* Progress of one step updates its line instead of adding lines. */
    var pkey = name === 'step:progress' || name === 'upload:progress'
      ? name + '|' + id + '|' + str(d && (d.step || d.upload_id)) : '';
    var item = pkey ? state.progressItems.get(pkey) : null;
    if (item && item.isConnected) {
      setText(item.querySelector('.event-time'), now);
      setText(item.querySelector('.event-detail'), shortId(id) + (detail ? ' · ' + detail : ''));
      return;
    }
    item = el('li', { 'data-event': name, 'data-assembly': id },
      el('span', { 'class': 'event-time' }, now),
      el('span', null, el('span', { 'class': 'badge badge-' + (eventKind(name) || 'none') }, name)),
      el('span', { 'class': 'event-detail', title: id }, shortId(id) + (detail ? ' · ' + detail : '')));
    if (pkey) state.progressItems.set(pkey, item);
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    show($('events-empty'), false);
    if (state.progressItems.size > 4 * MAX_EVENTS) {
      state.progressItems.forEach(function (v, k) { if (!v.isConnected) state.progressItems.delete(k); });
    }
  }

  function startStream() {
    stopStream();
    var branch = filterValue() || (state.self ? str(state.self.branch) : '');
    if (!branch || !state.token) return;
    var s = { branch: branch, lastId: null, retryMs: 3000, attempts: 0, stopped: false, controller: null, timer: 0 };
    state.stream = s;
    connect(s);
  }

  function stopStream() {
    var s = state.stream;
    state.stream = null;
    if (!s) return;
    s.stopped = true;
    clearTimeout(s.timer);
    if (s.controller) s.controller.abort();
    setStreamState('Not connected');
  }

  /* quiet: the server ended the stream normally (streams have a maximum
   * age), which is no error to show in red. */
  function retryStream(s, why, quiet) {
    if (s.stopped) return;
    s.attempts++;
    var delay = Math.min(s.retryMs * Math.pow(2, Math.min(s.attempts - 1, 4)), 60000);
    delay = Math.round(delay * (0.8 + Math.random() * 0.4));
    setStreamState('Reconnecting in ' + Math.ceil(delay / 1000) + ' s (' + why + ')', quiet ? '' : 'error');
    s.timer = setTimeout(function () { connect(s); }, delay);
  }

  function connect(s) {
    if (s.stopped) return;
    s.controller = new AbortController();
    setStreamState('Connecting…');
    var headers = { Accept: 'text/event-stream', Authorization: 'Bearer ' + state.token };
    if (s.lastId !== null) headers['Last-Event-ID'] = s.lastId;
    fetch('/api/stream?branch=' + encodeURIComponent(s.branch), {
      headers: headers, cache: 'no-store', credentials: 'omit', signal: s.controller.signal
    }).then(function (res) {
      if (s.stopped) return null;
      if (res.status === 401 || res.status === 403) {
        signOut('The branch no longer accepts this token. Enter it again.');
        return null;
      }
      if (!res.ok || !res.body) {
        return res.json().catch(function () { return null; }).then(function (j) {
          var e = errorOf(j);
          var msg = e && e.message ? str(e.message) : 'HTTP ' + res.status;
          if (res.status >= 400 && res.status < 500 && res.status !== 429) {
            setStreamState('Live updates unavailable: ' + msg, 'error');
            s.stopped = true;
          } else {
            retryStream(s, msg);
          }
          return null;
        });
      }
      s.attempts = 0;
      setStreamState('Live · ' + s.branch, 'live');
      return readStream(res.body, s).then(function () {
        retryStream(s, 'the stream ended', true);
      });
    }).catch(function (err) {
      if (s.stopped) return;
      retryStream(s, err && err.name === 'AbortError' ? 'aborted' : 'connection lost');
    });
  }

  /* Reads text/event-stream (HTML Living Standard, "server-sent events"):
   * lines end with CRLF, LF or CR; a blank line dispatches the event. */
  function readStream(body, s) {
    var reader = body.getReader();
    var decoder = new TextDecoder('utf-8');
    var buf = '';
    var ev = { name: '', data: [] };

    function line(text) {
      if (text === '') {
        if (ev.data.length) addEvent(ev.name || 'message', ev.data.join('\n'));
        if (ev.data.length) assembliesSoon();
        ev = { name: '', data: [] };
        return;
      }
      if (text.charAt(0) === ':') return; /* comment: heartbeat */
      var colon = text.indexOf(':');
      var field = colon < 0 ? text : text.slice(0, colon);
      var value = colon < 0 ? '' : text.slice(colon + 1);
      if (value.charAt(0) === ' ') value = value.slice(1);
      if (field === 'event') ev.name = value;
      else if (field === 'data') ev.data.push(value);
      else if (field === 'id' && value.indexOf('\u0000') < 0) s.lastId = value;
      else if (field === 'retry' && /^[0-9]+$/.test(value))
        s.retryMs = Math.min(Math.max(parseInt(value, 10), 1000), 60000);
    }

    function pump() {
      return reader.read().then(function (r) {
        if (r.done || s.stopped) return;
        buf += decoder.decode(r.value, { stream: true });
        /* A CR at the very end may be the first half of a CRLF. */
        var hold = '';
        var text = buf;
        if (text.charAt(text.length - 1) === '\r') { hold = '\r'; text = text.slice(0, -1); }
        var lines = text.split(/\r\n|\n|\r/);
        buf = lines.pop() + hold;
        if (buf.length > MAX_LINE_BUFFER) throw new Error('an event line is too long');
        lines.forEach(line);
        return pump();
      });
    }
    return pump();
  }

  /* ---- queue and dead letters ---- */

  function jobsOf(st) {
    return api('GET', '/api/v1/jobs?state=' + st + '&limit=100').then(function (j) {
      var jobs = j && Array.isArray(j.jobs) ? j.jobs.filter(function (x) { return x && typeof x === 'object'; }) : [];
      return { jobs: jobs, more: !!(j && j.next_cursor) };
    });
  }

  function countText(r) { return r.jobs.length + (r.more ? '+' : ''); }

  function refreshJobs() {
    return Promise.all([jobsOf('queued'), jobsOf('running'), jobsOf('dead')]).then(function (r) {
      var queued = r[0], running = r[1], dead = r[2];
      setText($('stat-queued'), countText(queued));
      setText($('stat-running'), countText(running));
      setText($('stat-dead'), countText(dead));
      $('stat-dead').parentNode.classList.toggle('has-dead', dead.jobs.length > 0);

      var live = running.jobs.concat(queued.jobs);
      syncRows($('jobs-body'), live, function (j) { return String(j.id); }, function (j) {
        return el('tr', { 'data-job': String(j.id) },
          el('td', { 'class': 'num', 'data-col': 'id' }),
          el('td', { 'data-col': 'state' }, el('span', { 'class': 'badge' })),
          el('td', { 'class': 'mono', 'data-col': 'assembly' }),
          el('td', { 'class': 'num', 'data-col': 'attempts' }),
          el('td', { 'data-col': 'visible' }, el('time')),
          el('td', { 'data-col': 'updated' }, el('time')));
      }, function (tr, j) {
        setText(cell(tr, 'id'), str(j.id));
        setBadge(cell(tr, 'state').firstChild, str(j.state), j.state === 'running' ? 'info' : '');
        setText(cell(tr, 'assembly'), shortId(j.assembly_id));
        cell(tr, 'assembly').setAttribute('title', str(j.assembly_id));
        setText(cell(tr, 'attempts'), str(j.receive_count) + ' / ' + str(j.max_receive));
        setTime(cell(tr, 'visible').firstChild, j.visible_at);
        setTime(cell(tr, 'updated').firstChild, j.updated_at);
      });
      show($('jobs-empty'), live.length === 0);
      show($('jobs-wrap'), live.length > 0);

      syncRows($('dead-body'), dead.jobs, function (j) { return String(j.id); }, createDeadRow, function (tr, j) {
        setText(cell(tr, 'id'), str(j.id));
        setText(cell(tr, 'assembly'), shortId(j.assembly_id));
        cell(tr, 'assembly').setAttribute('title', str(j.assembly_id));
        setText(cell(tr, 'attempts'), str(j.receive_count) + ' / ' + str(j.max_receive));
        setText(cell(tr, 'error'), str(j.last_error) || '—');
        setTime(cell(tr, 'updated').firstChild, j.updated_at);
      });
      show($('dead-empty'), dead.jobs.length === 0);
      show($('dead-wrap'), dead.jobs.length > 0);
    });
  }

  function createDeadRow(j) {
    var id = str(j.id);
    var button = el('button', { type: 'button', 'class': 'btn btn-small', 'aria-label': 'Requeue job ' + id }, 'Requeue');
    button.addEventListener('click', function () { requeue(button, id); });
    return el('tr', { 'data-job': id },
      el('td', { 'class': 'num', 'data-col': 'id' }),
      el('td', { 'class': 'mono', 'data-col': 'assembly' }),
      el('td', { 'class': 'num', 'data-col': 'attempts' }),
      el('td', { 'class': 'wrap', 'data-col': 'error' }),
      el('td', { 'data-col': 'updated' }, el('time')),
      el('td', { 'class': 'actions', 'data-col': 'actions' }, button));
  }

  function requeue(button, id) {
    var announce = $('queue-announce');
    if (!/^[0-9]+$/.test(id)) return;
    button.disabled = true;
    button.setAttribute('aria-busy', 'true');
    api('POST', '/api/v1/jobs/' + id + '/requeue').then(function () {
      setText(announce, 'Job ' + id + ' was requeued.');
      refresh();
    }, function (e) {
      if (!handleAuth(e)) setText(announce, 'Job ' + id + ' could not be requeued: ' + e.message);
    }).then(function () {
      button.disabled = false;
      button.removeAttribute('aria-busy');
    });
  }

  /* ---- refresh loop ---- */

  function handleAuth(e) {
    if (e instanceof StaleError) return true;
    if (e instanceof AuthError) {
      signOut('The branch did not accept the token (' + e.message + '). Enter it again.');
      return true;
    }
    return false;
  }

  function refresh() {
    if (!state.token) return Promise.resolve();
    if (state.refreshing) {
      state.refreshAgain = true;
      return Promise.resolve();
    }
    state.refreshing = true;
    var gen = state.generation;
    var work = [refreshBranches(), refreshAssemblies(), refreshJobs(), refreshHealth()];
    return Promise.all(work.map(function (p) {
      return p.then(function () { return null; }, function (e) { return e; });
    })).then(function (errors) {
      state.refreshing = false;
      if (gen !== state.generation) return;
      errors = errors.filter(function (e) { return e && !(e instanceof StaleError); });
      var auth = errors.filter(function (e) { return e instanceof AuthError; })[0];
      if (auth) {
        handleAuth(auth);
        return;
      }
      var banner = $('banner');
      if (errors.length) {
        setText(banner, 'Some data could not be refreshed: ' + errors[0].message);
        show(banner, true);
      } else {
        show(banner, false);
      }
      setText($('refreshed'), 'Updated ' + clock(new Date()));
      if (!state.self) loadSelf();
      if (state.refreshAgain) {
        state.refreshAgain = false;
        refresh();
      }
    });
  }

  function schedule() {
    clearTimeout(state.pollTimer);
    state.pollTimer = setTimeout(function () {
      var p = document.hidden ? Promise.resolve() : refresh();
      p.then(function () { if (state.token) schedule(); });
    }, POLL_MS);
  }

  /* ---- sign in and out ---- */

  function showLogin(message, isError) {
    show($('app'), false);
    show($('session'), false);
    show($('login-card'), true);
    var err = $('login-error');
    setText(err, message || '');
    err.classList.toggle('is-info', !isError);
  }

  function showApp() {
    show($('login-card'), false);
    show($('app'), true);
    show($('session'), true);
    setText($('login-error'), '');
  }

  function start() {
    showApp();
    refresh().then(schedule);
    if (state.self) startStream();
  }

  function signIn(token, button) {
    state.token = token;
    var gen = state.generation;
    button.disabled = true;
    setText($('login-error'), '');
    api('GET', '/api/v1/branches?limit=1').then(function () {
      if (gen !== state.generation) return;
      try {
        sessionStorage.setItem(TOKEN_KEY, token);
      } catch (_) { /* storage disabled: the token lives in this page only */ }
      $('token').value = '';
      start();
      $('branches-title').focus();
    }, function (e) {
      state.token = null;
      if (e instanceof StaleError) return;
      showLogin(e instanceof AuthError ? 'This token was not accepted: ' + e.message
                                       : 'Cannot check the token: ' + e.message, true);
      $('token').focus();
    }).then(function () { button.disabled = false; });
  }

  function clearData() {
    ['branches-body', 'assemblies-body', 'jobs-body', 'dead-body', 'events'].forEach(function (id) {
      $(id).replaceChildren();
    });
    state.branches = [];
    state.assemblies = [];
    state.progressItems.clear();
    state.filterKeys = '';
    show($('events-empty'), true);
    ['stat-peers', 'stat-queued', 'stat-running', 'stat-dead'].forEach(function (id) { setText($(id), '–'); });
    setText($('refreshed'), 'Not refreshed yet');
    setText($('branches-announce'), '');
    setText($('queue-announce'), '');
    show($('banner'), false);
    updateFilterOptions();
  }

  function signOut(message, isInfo) {
    state.generation++;
    state.token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing stored */ }
    clearTimeout(state.pollTimer);
    clearTimeout(state.assembliesTimer);
    state.refreshing = false;
    state.refreshAgain = false;
    stopStream();
    clearData();
    showLogin(message, !isInfo);
    $('token').focus();
  }

  function init() {
    $('login-form').addEventListener('submit', function (e) {
      e.preventDefault();
      var value = $('token').value.trim();
      if (!value) {
        showLogin('Enter the admin token of this branch.', true);
        $('token').focus();
        return;
      }
      signIn(value, $('login-submit'));
    });
    $('forget').addEventListener('click', function () {
      signOut('The token was removed from this tab.', true);
    });
    $('branch-filter').addEventListener('change', function () {
      renderAssemblies();
      $('events').replaceChildren();
      state.progressItems.clear();
      show($('events-empty'), true);
      startStream();
    });
    document.addEventListener('visibilitychange', function () {
      if (!document.hidden && state.token) refresh();
    });
    /* Relative times ("12 s ago") stay current between refreshes. */
    setInterval(function () {
      Array.prototype.forEach.call(document.querySelectorAll('time[datetime]'), function (t) {
        setText(t, ago(t.getAttribute('datetime')));
      });
    }, 1000);

    updateFilterOptions();
    loadSelf();
    var saved = null;
    try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (_) { saved = null; }
    if (saved) {
      state.token = saved;
      start();
    } else {
      showLogin('', false);
    }
  }

  init();
})();
