// postie's script sandbox: the `pm` API (and Postman's legacy globals) over plain data handed in
// by the runner. Loaded once per engine; `__postie.begin(input)` starts a step's scripts,
// `__postie.exec(index, fn)` runs one, `__postie.end()` returns what they did as JSON.
//
// Nothing here reaches the network or the disk: the only way out is the result of `end()`.
// Libraries (chai, lodash, crypto-js, moment) are loaded on first use through `__host_load`.
(function (G) {
  'use strict';

  var host = G.__host_load;
  delete G.__host_load;
  // Chai's bundle finds its global object as `global`, as under Node.
  G.global = G;

  // ---------------------------------------------------------------- libraries, loaded lazily
  var libs = {};
  function lib(name) {
    if (!(name in libs)) {
      // Each library's UMD wrapper assigns its global (`_`, `CryptoJS`, `moment`, `chai`).
      host(name);
      var global = { lodash: '_', 'crypto-js': 'CryptoJS', moment: 'moment', chai: 'chai' }[name];
      libs[name] = G[global];
      if (name === 'chai') {
        installPostmanChai(libs[name]);
        delete G.chai;
      }
    }
    return libs[name];
  }
  function lazyGlobal(name, libName) {
    Object.defineProperty(G, name, {
      configurable: true,
      enumerable: false,
      get: function () {
        delete G[name];
        var v = lib(libName);
        G[name] = v;
        return v;
      },
      set: function (v) {
        delete G[name];
        G[name] = v;
      },
    });
  }
  lazyGlobal('_', 'lodash');
  lazyGlobal('CryptoJS', 'crypto-js');
  lazyGlobal('moment', 'moment');

  function unsupported(what) {
    return new Error(what + ' is not available in postie\'s script sandbox');
  }

  // ------------------------------------------------------------------ small helpers
  function text(v) {
    if (v === undefined) return 'undefined';
    if (v === null) return 'null';
    if (typeof v === 'string') return v;
    if (typeof v === 'function') return '[Function' + (v.name ? ': ' + v.name : '') + ']';
    if (v instanceof Error) return v.name + ': ' + v.message;
    try {
      var s = JSON.stringify(v);
      return s === undefined ? String(v) : s;
    } catch (e) {
      return String(v);
    }
  }
  var B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  function btoa(input) {
    var s = String(input), out = '';
    for (var i = 0; i < s.length; i += 3) {
      var a = s.charCodeAt(i), b = s.charCodeAt(i + 1), c = s.charCodeAt(i + 2);
      if (a > 255 || b > 255 || c > 255) throw new Error('btoa: the string contains characters outside Latin-1');
      var n = (a << 16) | ((b || 0) << 8) | (c || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63] +
        (i + 1 < s.length ? B64[(n >> 6) & 63] : '=') + (i + 2 < s.length ? B64[n & 63] : '=');
    }
    return out;
  }
  function atob(input) {
    var s = String(input).replace(/[\s=]+/g, ''), out = '', bits = 0, acc = 0;
    for (var i = 0; i < s.length; i++) {
      var v = B64.indexOf(s[i]);
      if (v < 0) throw new Error('atob: not base64');
      acc = (acc << 6) | v;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((acc >> bits) & 255);
      }
    }
    return out;
  }
  function uuid4() {
    var h = '0123456789abcdef', s = '';
    for (var i = 0; i < 36; i++) {
      if (i === 8 || i === 13 || i === 18 || i === 23) s += '-';
      else if (i === 14) s += '4';
      else if (i === 19) s += h[(Math.random() * 4) | 8];
      else s += h[(Math.random() * 16) | 0];
    }
    return s;
  }
  var dynamic = {
    $guid: uuid4,
    $randomUUID: uuid4,
    $timestamp: function () { return String(Math.floor(Date.now() / 1000)); },
    $isoTimestamp: function () { return new Date().toISOString(); },
    $randomInt: function () { return String(Math.floor(Math.random() * 1001)); },
  };
  // `{{name}}` substitution as Postman does it: unknown names stay as written; values that hold
  // `{{…}}` themselves are substituted again (up to 19 passes).
  function replaceIn(template, lookup) {
    if (typeof template !== 'string') return template;
    var out = template;
    for (var pass = 0; pass < 19 && out.indexOf('{{') >= 0; pass++) {
      var changed = false;
      out = out.replace(/\{\{([^{}]*?)\}\}/g, function (m, name) {
        if (dynamic[name]) { changed = true; return dynamic[name](); }
        var v = lookup(name);
        if (v === undefined) return m;
        changed = true;
        return typeof v === 'string' ? v : text(v);
      });
      if (!changed) break;
    }
    return out;
  }

  // ---------------------------------------------------------------- property lists (headers)
  function PropertyList(items, caseless, onChange) {
    this._items = items;
    this._caseless = caseless;
    this._onChange = onChange;
  }
  PropertyList.prototype = {
    _find: function (key) {
      var k = this._caseless ? String(key).toLowerCase() : String(key);
      for (var i = this._items.length - 1; i >= 0; i--) {
        var ik = this._caseless ? this._items[i].key.toLowerCase() : this._items[i].key;
        if (ik === k) return i;
      }
      return -1;
    },
    get: function (key) { var i = this._find(key); return i < 0 ? undefined : this._items[i].value; },
    one: function (key) { var i = this._find(key); return i < 0 ? undefined : this._items[i]; },
    has: function (key, value) {
      var i = this._find(key);
      return i >= 0 && (arguments.length < 2 || this._items[i].value === value);
    },
    all: function () { return this._items.slice(); },
    count: function () { return this._items.length; },
    idx: function (i) { return this._items[i]; },
    each: function (fn, ctx) { this._items.forEach(fn, ctx); },
    map: function (fn, ctx) { return this._items.map(fn, ctx); },
    filter: function (fn, ctx) { return this._items.filter(fn, ctx); },
    find: function (fn, ctx) { return this._items.find(fn, ctx); },
    reduce: function (fn, acc) { return this._items.reduce(fn, acc); },
    toObject: function () {
      var o = {};
      this._items.forEach(function (h) { o[this._caseless ? h.key.toLowerCase() : h.key] = h.value; }, this);
      return o;
    },
    toJSON: function () { return this._items.map(function (h) { return { key: h.key, value: h.value }; }); },
    toString: function () { return this._items.map(function (h) { return h.key + ': ' + h.value; }).join('\n'); },
    add: function (h) {
      h = normaliseHeader(h);
      this._items.push(h);
      if (this._onChange) this._onChange('add', h.key, h.value);
    },
    upsert: function (h) {
      h = normaliseHeader(h);
      var i = this._find(h.key);
      if (i < 0) this._items.push(h); else this._items[i] = h;
      if (this._onChange) this._onChange('upsert', h.key, h.value);
    },
    remove: function (key) {
      var self = this;
      var test = typeof key === 'function' ? key : function (h) {
        return self._caseless ? h.key.toLowerCase() === String(key).toLowerCase() : h.key === key;
      };
      var removed = this._items.filter(test);
      this._items = this._items.filter(function (h) { return !test(h); });
      removed.forEach(function (h) { if (self._onChange) self._onChange('remove', h.key); });
    },
    clear: function () {
      var self = this;
      this._items.forEach(function (h) { if (self._onChange) self._onChange('remove', h.key); });
      this._items = [];
    },
  };
  Object.defineProperty(PropertyList.prototype, 'members', { get: function () { return this._items; } });
  function normaliseHeader(h) {
    if (typeof h === 'string') {
      var i = h.indexOf(':');
      return { key: h.slice(0, i < 0 ? h.length : i).trim(), value: i < 0 ? '' : h.slice(i + 1).trim() };
    }
    return { key: String(h.key), value: h.value === undefined || h.value === null ? '' : String(h.value) };
  }

  // ----------------------------------------------------------------------- the step's state
  var S = null; // set by begin()
  var LAYERS = ['globals', 'collection', 'environment', 'data', 'local'];

  function Scope(layer, writable) {
    this._layer = layer;
    this._writable = writable;
  }
  Scope.prototype = {
    _vars: function () { return S.vars[this._layer]; },
    get: function (key) { var v = this._vars(); return Object.prototype.hasOwnProperty.call(v, key) ? v[key] : undefined; },
    has: function (key) { return Object.prototype.hasOwnProperty.call(this._vars(), key); },
    toObject: function () { return Object.assign({}, this._vars()); },
    toJSON: function () { return this.toObject(); },
    set: function (key, value) {
      if (!this._writable) throw new Error('pm.' + this._layer + ' is read-only');
      if (typeof key === 'object' && key !== null) {
        for (var k in key) this.set(k, key[k]);
        return;
      }
      key = String(key);
      this._vars()[key] = value;
      S.ops.push({ layer: this._layer, op: 'set', key: key, value: value === undefined ? null : value });
    },
    unset: function (key) {
      if (!this._writable) throw new Error('pm.' + this._layer + ' is read-only');
      key = String(key);
      delete this._vars()[key];
      S.ops.push({ layer: this._layer, op: 'unset', key: key });
    },
    clear: function () {
      if (!this._writable) throw new Error('pm.' + this._layer + ' is read-only');
      S.vars[this._layer] = {};
      S.ops.push({ layer: this._layer, op: 'clear' });
    },
    replaceIn: function (template) {
      var self = this;
      return replaceIn(template, function (n) { return self.get(n); });
    },
  };
  // Postman's precedence, narrowest first.
  function lookup(name) {
    for (var i = LAYERS.length - 1; i >= 0; i--) {
      var v = S.vars[LAYERS[i]];
      if (Object.prototype.hasOwnProperty.call(v, name)) return v[name];
    }
    return undefined;
  }
  var variables = new Scope('local', true);
  variables.get = lookup;
  variables.has = function (key) { return lookup(key) !== undefined; };
  variables.toObject = function () {
    var o = {};
    LAYERS.forEach(function (l) { Object.assign(o, S.vars[l]); });
    return o;
  };
  variables.replaceIn = function (template) { return replaceIn(template, lookup); };

  // --------------------------------------------------------------------- request / response
  function makeUrl(raw) {
    var u = { _raw: String(raw || '') };
    var m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(\?[^#]*)?(#.*)?$/.exec(u._raw);
    var query = [];
    if (m && m[4]) {
      m[4].slice(1).split('&').filter(Boolean).forEach(function (p) {
        var i = p.indexOf('=');
        query.push({ key: decodeURIComponent(i < 0 ? p : p.slice(0, i)), value: i < 0 ? null : decodeURIComponent(p.slice(i + 1).replace(/\+/g, ' ')) });
      });
    }
    u.protocol = m ? m[1] : undefined;
    var hostPort = m ? m[2] : '';
    var at = hostPort.lastIndexOf('@');
    if (at >= 0) hostPort = hostPort.slice(at + 1);
    var colon = hostPort.lastIndexOf(':');
    u.host = (colon > 0 && hostPort.indexOf(']') < colon ? hostPort.slice(0, colon) : hostPort).split('.');
    u.port = colon > 0 && hostPort.indexOf(']') < colon ? hostPort.slice(colon + 1) : undefined;
    u.path = m ? m[3].split('/').filter(function (s, i) { return i > 0 || s; }) : [];
    u.query = new PropertyList(query, false);
    u.hash = m && m[5] ? m[5].slice(1) : undefined;
    u.toString = function () { return this._raw; };
    u.getHost = function () { return this.host.join('.'); };
    u.getPath = function () { return '/' + this.path.join('/'); };
    u.getQueryString = function () { return m && m[4] ? m[4].slice(1) : ''; };
    u.getPathWithQuery = function () { var q = this.getQueryString(); return this.getPath() + (q ? '?' + q : ''); };
    u.getRemote = function () { return hostPort; };
    u.toJSON = function () { return this._raw; };
    return u;
  }

  function makeRequest(r, mutable) {
    if (!r) return undefined;
    var headers = new PropertyList((r.headers || []).map(function (h) { return { key: h.key, value: h.value }; }), true,
      mutable ? function (op, key, value) { S.requestOps.push({ op: op, key: key, value: value }); } : null);
    var body = r.body === undefined || r.body === null ? undefined : {
      mode: r.bodyMode || 'raw',
      raw: r.body,
      toString: function () { return r.body; },
      isEmpty: function () { return !r.body; },
    };
    return {
      id: r.id,
      name: r.name,
      method: r.method,
      url: makeUrl(r.url),
      headers: headers,
      body: body,
      auth: undefined,
      getHeaders: function () { return headers.toObject(); },
      addHeader: function (h) { headers.add(h); },
      upsertHeader: function (h) { headers.upsert(h); },
      removeHeader: function (k) { headers.remove(k); },
      toJSON: function () { return { method: r.method, url: r.url, header: headers.toJSON(), body: body && { mode: body.mode, raw: body.raw } }; },
    };
  }

  function parseCookies(headerItems) {
    var out = [];
    headerItems.forEach(function (h) {
      if (h.key.toLowerCase() !== 'set-cookie') return;
      var parts = h.value.split(';');
      var first = parts.shift(), i = first.indexOf('=');
      if (i <= 0) return;
      var c = { name: first.slice(0, i).trim(), value: first.slice(i + 1).trim() };
      parts.forEach(function (p) {
        var j = p.indexOf('='), k = (j < 0 ? p : p.slice(0, j)).trim().toLowerCase();
        var v = j < 0 ? true : p.slice(j + 1).trim();
        if (k === 'path') c.path = v; else if (k === 'domain') c.domain = v;
        else if (k === 'expires') c.expires = v; else if (k === 'httponly') c.httpOnly = true;
        else if (k === 'secure') c.secure = true;
      });
      out.push(c);
    });
    return out;
  }

  // The jar's cookies for the URL, then those this response sets (which win).
  function allCookies(r) {
    var out = (r.cookies || []).map(function (c) { return { name: c.key, value: c.value }; });
    parseCookies(r.headers).forEach(function (c) {
      out = out.filter(function (o) { return o.name !== c.name; });
      out.push(c);
    });
    return out;
  }

  function makeResponse(r) {
    if (!r) return undefined;
    var headers = new PropertyList(r.headers.map(function (h) { return { key: h.key, value: h.value }; }), true);
    var parsed, parseError;
    var resp = {
      __postieResponse: true,
      code: r.code,
      status: r.reason,
      reason: function () { return r.reason; },
      headers: headers,
      responseTime: r.responseTime,
      responseSize: r.size,
      size: function () { return { body: r.size, header: 0, total: r.size }; },
      text: function () { return r.body; },
      json: function () {
        if (parsed === undefined && parseError === undefined) {
          try { parsed = JSON.parse(r.body); } catch (e) { parseError = e; }
        }
        if (parseError) throw new SyntaxError('JSONError: ' + parseError.message + ' (the response body is not JSON)');
        return parsed;
      },
      cookies: new PropertyList(allCookies(r).map(function (c) { return { key: c.name, value: c.value, cookie: c }; }), false),
      toJSON: function () { return { code: r.code, status: r.reason, header: headers.toJSON(), body: r.body, responseTime: r.responseTime }; },
    };
    Object.defineProperty(resp, 'to', { get: function () { return lib('chai').expect(resp).to; } });
    Object.defineProperty(resp, 'stream', { get: function () { return r.body; } });
    return resp;
  }

  // ----------------------------------------------------------------- Chai for responses
  function installPostmanChai(chai) {
    var A = chai.Assertion;
    function isResponse(o) { return o && o.__postieResponse === true; }
    function body(o) { return o.text(); }
    function classProp(name, lo, hi, label) {
      A.addProperty(name, function () {
        var o = this._obj;
        this.assert(o.code >= lo && o.code <= hi,
          'expected response code to be ' + label + ' but found ' + o.code,
          'expected response code to not be ' + label + ' but found ' + o.code);
      });
    }
    function codeProp(name, code) {
      A.addProperty(name, function () {
        var o = this._obj;
        this.assert(o.code === code,
          'expected response code to be ' + code + ' but found ' + o.code,
          'expected response code to not be ' + code + ' but found ' + o.code);
      });
    }
    classProp('info', 100, 199, '1XX');
    classProp('success', 200, 299, '2XX');
    classProp('redirection', 300, 399, '3XX');
    classProp('clientError', 400, 499, '4XX');
    classProp('serverError', 500, 599, '5XX');
    A.addProperty('error', function () {
      var o = this._obj;
      this.assert(o.code >= 400 && o.code <= 599,
        'expected response code to be 4XX or 5XX but found ' + o.code,
        'expected response code to not be 4XX or 5XX but found ' + o.code);
    });
    codeProp('accepted', 202);
    codeProp('withoutContent', 204);
    codeProp('badRequest', 400);
    codeProp('unauthorized', 401);
    codeProp('unauthorised', 401);
    codeProp('forbidden', 403);
    codeProp('notFound', 404);
    codeProp('notAcceptable', 406);
    codeProp('rateLimited', 429);
    A.overwriteProperty('ok', function (_super) {
      return function () {
        if (!isResponse(this._obj)) return _super.call(this);
        var o = this._obj;
        this.assert(o.code === 200,
          'expected response code to be 200 but found ' + o.code,
          'expected response code to not be 200 but found ' + o.code);
      };
    });
    A.addMethod('status', function (expected) {
      var o = this._obj;
      if (typeof expected === 'string') {
        this.assert(o.status === expected,
          'expected response to have status reason \'' + expected + '\' but got \'' + o.status + '\'',
          'expected response to not have status reason \'' + expected + '\'');
      } else {
        this.assert(o.code === expected,
          'expected response to have status code ' + expected + ' but got ' + o.code,
          'expected response to not have status code ' + expected);
      }
    });
    A.addMethod('header', function (key, value) {
      var o = this._obj;
      var has = o.headers.has(key);
      if (arguments.length < 2) {
        this.assert(has, 'expected response to have header with key \'' + key + '\'',
          'expected response to not have header with key \'' + key + '\'');
      } else {
        var got = o.headers.get(key);
        this.assert(has && got === value,
          'expected \'' + key + '\' response header to be \'' + value + '\' but got \'' + got + '\'',
          'expected \'' + key + '\' response header to not be \'' + value + '\'');
      }
    });
    A.addProperty('withBody', function () {
      var o = this._obj;
      this.assert(!!body(o), 'expected response to have content in body', 'expected response to not have content in body');
    });
    A.addProperty('json', function () {
      var o = this._obj, err;
      try { JSON.parse(body(o)); } catch (e) { err = e; }
      this.assert(!err, 'expected response body to be a valid json but got error ' + (err && err.message),
        'expected response body not to be a valid json');
    });
    A.addMethod('body', function (expected) {
      var o = this._obj, b = body(o);
      if (arguments.length === 0) {
        this.assert(!!b, 'expected response to have content in body', 'expected response to not have content in body');
      } else if (typeof expected === 'string') {
        this.assert(b === expected, 'expected response body to equal \'' + expected + '\' but got \'' + b + '\'',
          'expected response body to not equal \'' + expected + '\'');
      } else if (expected instanceof RegExp) {
        this.assert(expected.test(b), 'expected response body text to match \'' + expected + '\' but got \'' + b + '\'',
          'expected response body text \'' + b + '\' to not match \'' + expected + '\'');
      } else {
        var parsed;
        try { parsed = JSON.parse(b); } catch (e) { parsed = undefined; }
        this.assert(lib('lodash').isEqual(parsed, expected), 'expected response body json to equal ' + text(expected) + ' but got ' + text(parsed),
          'expected response body json to not equal ' + text(expected));
      }
    });
    A.addMethod('jsonBody', function (path, value) {
      var o = this._obj, parsed, err;
      try { parsed = JSON.parse(body(o)); } catch (e) { err = e; }
      if (arguments.length === 0) {
        this.assert(!err, 'expected response body to be a valid json but got error ' + (err && err.message),
          'expected response body not to be a valid json');
        return;
      }
      var L = lib('lodash');
      if (typeof path !== 'string') {
        this.assert(L.isEqual(parsed, path), 'expected response body json to equal ' + text(path) + ' but got ' + text(parsed),
          'expected response body json to not equal ' + text(path));
        return;
      }
      var has = !err && L.has(parsed, path);
      if (arguments.length < 2) {
        this.assert(has, 'expected ' + text(parsed) + ' in response to contain property \'' + path + '\'',
          'expected ' + text(parsed) + ' in response to not contain property \'' + path + '\'');
      } else {
        var got = has ? L.get(parsed, path) : undefined;
        this.assert(has && L.isEqual(got, value),
          'expected response body json at "' + path + '" to contain ' + text(value) + ' but got ' + text(got),
          'expected response body json at "' + path + '" to not contain ' + text(value));
      }
    });
    A.addMethod('cookie', function (name, value) {
      var o = this._obj, has = o.cookies.has(name);
      if (arguments.length < 2) {
        this.assert(has, 'expected response to have cookie \'' + name + '\'', 'expected response to not have cookie \'' + name + '\'');
      } else {
        var got = o.cookies.get(name);
        this.assert(has && got === value, 'expected cookie \'' + name + '\' to have value \'' + value + '\' but got \'' + got + '\'',
          'expected cookie \'' + name + '\' to not have value \'' + value + '\'');
      }
    });
    A.addMethod('jsonSchema', function () {
      throw unsupported('to.have.jsonSchema (JSON Schema validation)');
    });
    A.addMethod('responseTime', function (ms) {
      var o = this._obj;
      this.assert(o.responseTime === ms, 'expected response time to be ' + ms + 'ms but got ' + o.responseTime + 'ms',
        'expected response time to not be ' + ms + 'ms');
    });
  }

  // ------------------------------------------------------------------------------ pm.test
  function recordTest(name, fn) {
    var t = { name: String(name), passed: true, error: null, skipped: false, script: S.current };
    S.tests.push(t);
    if (typeof fn !== 'function') {
      t.skipped = fn === undefined;
      return;
    }
    var fail = function (e) {
      t.passed = false;
      t.error = e && e.message !== undefined ? (e.name && e.name !== 'Error' && e.name !== 'AssertionError' ? e.name + ': ' : '') + e.message : text(e);
    };
    try {
      if (fn.length > 0) {
        // mocha style: `function (done) { … done(); }`
        var settle;
        var p = new Promise(function (resolve) { settle = resolve; });
        S.pending.push(p.then(function (e) { if (e) fail(e); }));
        fn(function (e) { settle(e); });
      } else {
        var r = fn();
        if (r && typeof r.then === 'function') S.pending.push(r.then(function () {}, fail));
      }
    } catch (e) {
      fail(e);
    }
  }
  function test(name, fn) {
    recordTest(name, fn);
    return pm;
  }
  test.skip = function (name) {
    S.tests.push({ name: String(name), passed: true, error: null, skipped: true, script: S.current });
    return pm;
  };
  test.index = function () { return S.tests.length; };

  function setNext(name) {
    S.next = { value: name === null || name === undefined ? null : String(name) };
  }

  var requireable = {
    lodash: function () { return lib('lodash'); },
    'crypto-js': function () { return lib('crypto-js'); },
    moment: function () { return lib('moment'); },
    chai: function () { return lib('chai'); },
    uuid: function () { return { v4: uuid4 }; },
    atob: function () { return atob; },
    btoa: function () { return btoa; },
  };
  function requireLib(name) {
    var f = requireable[String(name)];
    if (!f) throw unsupported('require(\'' + name + '\')');
    return f();
  }

  var pm = {
    test: test,
    expect: function (v, msg) { return lib('chai').expect(v, msg); },
    environment: new Scope('environment', true),
    collectionVariables: new Scope('collection', true),
    globals: new Scope('globals', true),
    iterationData: new Scope('data', false),
    variables: variables,
    execution: {
      setNextRequest: setNext,
      skipRequest: function () {
        if (S.event !== 'prerequest') throw new Error('pm.execution.skipRequest() works only in a pre-request script');
        S.skip = true;
      },
    },
    setNextRequest: setNext,
    sendRequest: function () {
      throw unsupported('pm.sendRequest (scripts cannot reach the network; make it a request of the collection)');
    },
    visualizer: { set: function () {}, clear: function () {} },
    require: requireLib,
  };
  Object.defineProperty(pm.environment, 'name', { get: function () { return S.environmentName; } });
  Object.defineProperty(pm.variables, 'name', { value: 'local' });

  // ---------------------------------------------------------------------------- console
  function consoleFn(level) {
    return function () {
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(text(arguments[i]));
      if (S.console.length < 1000) S.console.push({ level: level, text: parts.join(' ') });
      else if (S.console.length === 1000) S.console.push({ level: 'warn', text: '… further console output dropped' });
    };
  }
  var console = {
    log: consoleFn('log'), info: consoleFn('info'), warn: consoleFn('warn'),
    error: consoleFn('error'), debug: consoleFn('debug'), trace: consoleFn('debug'),
  };

  // ----------------------------------------------------------------------------- timers
  var timers = [], timerSeq = 0;
  function addTimer(fn, ms, args, repeat) {
    if (typeof fn !== 'function') throw new TypeError('setTimeout expects a function');
    var t = { id: ++timerSeq, due: Date.now() + (Number(ms) || 0), fn: fn, args: args, every: repeat ? Math.max(Number(ms) || 0, 1) : 0 };
    timers.push(t);
    return t.id;
  }
  function clearTimer(id) { timers = timers.filter(function (t) { return t.id !== id; }); }

  // --------------------------------------------------------------------- the host's entry
  var legacy = {};
  function begin(input) {
    S = {
      event: input.event,
      vars: {},
      ops: [],
      tests: [],
      errors: [],
      console: [],
      pending: [],
      requestOps: [],
      next: undefined,
      skip: false,
      current: 0,
      environmentName: input.environmentName,
    };
    LAYERS.forEach(function (l) { S.vars[l] = Object.assign({}, input.vars[l] || {}); });
    timers = [];
    pm.info = {
      eventName: input.event,
      iteration: input.iteration,
      iterationCount: input.iterationCount,
      requestName: input.request ? input.request.name : undefined,
      requestId: input.request ? input.request.id : undefined,
    };
    pm.request = makeRequest(input.request, input.event === 'prerequest');
    pm.response = makeResponse(input.response);
    pm.cookies = pm.response ? pm.response.cookies : new PropertyList([], false);
    pm.iterationData.toJSON = function () { return Object.assign({}, S.vars.data); };

    // Postman's legacy globals.
    var r = input.response;
    legacy = {
      responseBody: r ? r.body : undefined,
      responseCode: r ? { code: r.code, name: r.reason, detail: r.reason } : undefined,
      responseHeaders: r ? r.headers.reduce(function (o, h) { o[h.key] = h.value; return o; }, {}) : undefined,
      responseTime: r ? r.responseTime : undefined,
      responseCookies: r ? allCookies(r) : undefined,
      request: input.request ? {
        id: input.request.id, name: input.request.name, url: input.request.url, method: input.request.method,
        headers: (input.request.headers || []).reduce(function (o, h) { o[h.key] = h.value; return o; }, {}),
        data: input.request.body,
      } : undefined,
      environment: Object.assign({}, S.vars.environment),
      globals: Object.assign({}, S.vars.globals),
      data: Object.assign({}, S.vars.data),
      iteration: input.iteration,
    };
    for (var k in legacy) G[k] = legacy[k];
    G.pm = pm;
    G.postman = postman;
    G.console = console;
  }

  // Postman's legacy setters stringify truthy values (and `false`) but keep 0, '' and null.
  function stringified(v) {
    if ((v === false || v) && typeof v !== 'string' && v !== null && typeof v.toString === 'function') {
      return v.toString();
    }
    return v;
  }
  var postman = {
    setEnvironmentVariable: function (k, v) { pm.environment.set(k, stringified(v)); },
    getEnvironmentVariable: function (k) { return pm.environment.get(k); },
    clearEnvironmentVariable: function (k) { pm.environment.unset(k); },
    clearEnvironmentVariables: function () { pm.environment.clear(); },
    setGlobalVariable: function (k, v) { pm.globals.set(k, stringified(v)); },
    getGlobalVariable: function (k) { return pm.globals.get(k); },
    clearGlobalVariable: function (k) { pm.globals.unset(k); },
    clearGlobalVariables: function () { pm.globals.clear(); },
    setNextRequest: setNext,
    getResponseHeader: function (k) { return pm.response ? pm.response.headers.get(k) : undefined; },
    getResponseCookie: function (k) {
      if (!pm.response) return undefined;
      var c = pm.response.cookies.one(k);
      return c ? c.cookie : undefined;
    },
  };

  function scriptError(index, e) {
    var message = e && e.message !== undefined ? (e.name ? e.name + ': ' : '') + e.message : 'uncaught ' + text(e);
    S.errors.push({ script: index, message: message, stack: e && e.stack ? String(e.stack) : '' });
  }

  // Runs one script (already compiled into an async function) with its own `tests` object.
  function exec(index, fn) {
    S.current = index;
    G.tests = {};
    var legacyTests = G.tests;
    var pendingBefore = S.pending.length;
    var done = function () {
      return Promise.all(S.pending.slice(pendingBefore)).then(function () {
        for (var name in legacyTests) {
          var v = legacyTests[name];
          S.tests.push({ name: name, passed: !!v, error: v ? null : 'expected ' + text(v) + ' to be truthy', skipped: false, script: index });
        }
      });
    };
    var p;
    try {
      p = fn();
    } catch (e) {
      scriptError(index, e);
      return Promise.resolve();
    }
    return Promise.resolve(p).then(done, function (e) { scriptError(index, e); return done(); });
  }

  // Milliseconds until the next timer is due, or -1 when none is pending.
  function nextTimer() {
    if (!timers.length) return -1;
    var due = Math.min.apply(null, timers.map(function (t) { return t.due; }));
    return Math.max(0, due - Date.now());
  }
  function fireTimer() {
    if (!timers.length) return;
    timers.sort(function (a, b) { return a.due - b.due || a.id - b.id; });
    var t = timers[0];
    if (t.every) t.due = Date.now() + t.every; else timers.shift();
    try {
      t.fn.apply(null, t.args);
    } catch (e) {
      scriptError(S.current, e);
    }
  }

  function end() {
    var out = {
      tests: S.tests, errors: S.errors, console: S.console, ops: S.ops,
      requestOps: S.requestOps, skip: S.skip,
    };
    if (S.next) out.next = S.next;
    for (var k in legacy) delete G[k];
    delete G.tests;
    timers = [];
    S = null;
    return JSON.stringify(out, function (key, value) {
      return typeof value === 'function' ? undefined : value;
    });
  }

  G.setTimeout = function (fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), false); };
  G.setInterval = function (fn, ms) { return addTimer(fn, ms, Array.prototype.slice.call(arguments, 2), true); };
  G.setImmediate = function (fn) { return addTimer(fn, 0, Array.prototype.slice.call(arguments, 1), false); };
  G.clearTimeout = G.clearInterval = G.clearImmediate = clearTimer;
  G.atob = atob;
  G.btoa = btoa;
  G.require = requireLib;
  G.xml2Json = function () { throw unsupported('xml2Json'); };
  G.__postie = {
    begin: function (json) { begin(JSON.parse(json)); },
    exec: exec,
    nextTimer: nextTimer,
    fireTimer: fireTimer,
    recordError: scriptError,
    end: end,
  };
})(globalThis);
