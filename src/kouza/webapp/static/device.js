// The browser's device key (ADR 0039): an ECDSA P-256 key pair made by WebCrypto with
// extractable: false, kept in IndexedDB. Only the public JWK leaves the browser, when a form
// marked data-keygen is sent. A form marked data-sign="<action>" is signed before it leaves:
// the page asks /app/device/challenge for a single-use nonce and puts device_id, nonce and a
// compact JWS (ES256) over {nonce, action, device_id, user_id} in the form's hidden fields.
(function () {
  "use strict";
  var DB = "kouza-wallet", STORE = "device-keys";
  var store = document.getElementById("device-store");
  var status = document.getElementById("device-status");
  if (!store || !window.crypto || !window.crypto.subtle || !window.indexedDB) { return; }
  var userId = store.getAttribute("data-user") || "";
  var csrf = store.getAttribute("data-csrf") || "";
  var registered = JSON.parse(store.getAttribute("data-devices") || "[]");
  var lang = document.documentElement.lang === "ja" ? "ja" : "en";
  var TEXT = {
    ja: { signing: "この端末の鍵で署名しています…", creating: "この端末の鍵を作っています…",
          none: "このブラウザーには、このアカウントの端末の鍵がありません。",
          present: "このブラウザーには登録済みの端末の鍵があります。",
          failed: "端末の鍵で署名できませんでした: " },
    en: { signing: "Signing with this device's key…", creating: "Creating this device's key…",
          none: "This browser holds no device key for this account.",
          present: "This browser holds a registered device key.",
          failed: "Could not sign with the device key: " }
  }[lang];

  function say(text) { if (status) { status.textContent = text; } }
  function b64url(bytes) {
    var text = "";
    new Uint8Array(bytes).forEach(function (b) { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function utf8(text) { return new TextEncoder().encode(text); }
  function open() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: "thumbprint" }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  function run(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var request = work(tx.objectStore(STORE));
        tx.oncomplete = function () { resolve(request.result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function thumbprint(jwk) {  // RFC 7638: the required members in lexicographic order
    var canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    return crypto.subtle.digest("SHA-256", utf8(canonical)).then(b64url);
  }
  function localKey() {  // this user's key that the server lists as registered
    return run("readonly", function (s) { return s.getAll(); }).then(function (records) {
      for (var i = 0; i < records.length; i++) {
        for (var j = 0; j < registered.length; j++) {
          if (records[i].user === userId && records[i].thumbprint === registered[j].thumbprint) {
            return { deviceId: registered[j].id, key: records[i].keys.privateKey };
          }
        }
      }
      return null;
    });
  }
  function createKey() {
    return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"])
      .then(function (keys) {
        return crypto.subtle.exportKey("jwk", keys.publicKey).then(function (full) {
          var jwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
          return thumbprint(jwk).then(function (print) {
            return run("readwrite", function (s) {
              return s.put({ thumbprint: print, user: userId, keys: keys, created: new Date().toISOString() });
            }).then(function () { return jwk; });
          });
        });
      });
  }
  function sign(key, claims) {
    var input = b64url(utf8(JSON.stringify({ alg: "ES256" }))) + "." + b64url(utf8(JSON.stringify(claims)));
    return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, utf8(input))
      .then(function (signature) { return input + "." + b64url(signature); });  // raw r||s: JWS ES256
  }
  function challenge(action, deviceId) {
    var body = new URLSearchParams({ action: action, device_id: deviceId, csrf_token: csrf });
    return fetch("/app/device/challenge", {
      method: "POST", body: body, credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
    }).then(function (answer) {
      return answer.json().then(function (json) {
        if (!answer.ok) { throw new Error(json.detail || answer.statusText); }
        return json;
      });
    });
  }
  function set(form, name, value) { var input = form.querySelector('input[name="' + name + '"]'); if (input) { input.value = value; } }
  function sendOnce(form) { form.setAttribute("data-sent", "1"); form.submit(); }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.hasAttribute("data-sent")) { return; }
    if (form.hasAttribute("data-keygen")) {
      event.preventDefault();
      say(TEXT.creating);
      createKey().then(function (jwk) {
        set(form, "device_jwk", JSON.stringify(jwk));
        sendOnce(form);
      }, function (error) { say(TEXT.failed + error.message); });
      return;
    }
    var action = form.getAttribute("data-sign");
    if (!action) { return; }
    event.preventDefault();
    localKey().then(function (found) {
      if (!found) { sendOnce(form); return; }  // the server says what else it accepts
      say(TEXT.signing);
      return challenge(action, found.deviceId).then(function (issued) {
        var claims = { nonce: issued.nonce, action: issued.action, device_id: issued.device_id, user_id: issued.user_id };
        return sign(found.key, claims).then(function (jws) {
          set(form, "device_id", issued.device_id); set(form, "nonce", issued.nonce); set(form, "signature", jws);
          sendOnce(form);
        });
      });
    }).catch(function (error) { say(TEXT.failed + error.message); });
  });

  var here = document.querySelector("[data-this-browser]");
  if (here && userId) {
    localKey().then(function (found) { here.textContent = found ? TEXT.present : TEXT.none; });
  }
})();
