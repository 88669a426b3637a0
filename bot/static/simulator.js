// The WhatsApp simulator: sends what you type to /simulator/send (which signs it and hands it to
// the real webhook), shows the replies the webhook gave, and every 2 seconds fetches the
// conversation's newer stored messages, so staff replies from the console appear too. The choices
// a reply offers show as buttons under it (rows of a list beyond three), as WhatsApp shows them;
// a click sends the choice as a tapped button would (its id and title).
// Message text is untrusted: it only ever becomes text nodes (WhatsApp's *bold* and _italic_ as
// <strong>/<em> elements whose textContent is set), never HTML.
"use strict";
(function () {
  var root, texts, log, seen, understood, lastId, busy, generation;

  function $(id) { return document.getElementById(id); }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function number() { return $("sim-number").value.trim(); }

  function formatted(text) {
    var fragment = document.createDocumentFragment();
    var pattern = /\*[^*\n]+\*|_[^_\n]+_/g;
    var last = 0;
    var found;
    while ((found = pattern.exec(text)) !== null) {
      if (found.index > last) { fragment.appendChild(document.createTextNode(text.slice(last, found.index))); }
      var element = document.createElement(found[0].charAt(0) === "*" ? "strong" : "em");
      element.textContent = found[0].slice(1, -1);
      fragment.appendChild(element);
      last = found.index + found[0].length;
    }
    if (last < text.length) { fragment.appendChild(document.createTextNode(text.slice(last))); }
    return fragment;
  }

  function line(className, text) {
    var element = document.createElement(className === "text" ? "p" : "span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function clock(iso) {
    var moment = new Date(iso);
    return isNaN(moment) ? "" : moment.toLocaleTimeString("id-ID", { hour: "2-digit", minute: "2-digit", timeZone: "Asia/Jakarta" });
  }

  function understanding(inbound) {
    if (!inbound) { return ""; }
    if (!inbound.intent) { return fill(texts.not_understood, { reason: inbound.reason || "-" }); }
    var score = typeof inbound.score === "number" ? inbound.score.toFixed(2) : "-";
    return fill(texts.understood, { intent: inbound.intent, decision: inbound.decision || "-", score: score });
  }

  function mediaLabel(contentType) {
    if (/^image\//.test(contentType)) { return texts.image; }
    if (/^audio\//.test(contentType)) { return texts.voice; }
    return texts.attachment + ": " + contentType;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function bubble(message) {
    if (seen[message.id]) { return; }
    seen[message.id] = true;
    lastId = Math.max(lastId, message.id);
    var empty = $("sim-empty");
    if (empty) { empty.remove(); }
    var item = document.createElement("li");
    item.className = "msg from-" + message.sender;
    item.dataset.id = message.id;
    if (message.sender === "bot") { item.appendChild(line("who", texts.bot)); }
    if (message.sender === "staff") { item.appendChild(line("who", texts.staff + " · " + (message.staff_name || ""))); }
    if (message.text) {
      var paragraph = document.createElement("p");
      paragraph.className = "text";
      paragraph.appendChild(formatted(message.text));
      item.appendChild(paragraph);
    }
    (message.media || []).forEach(function (media) { item.appendChild(line("text", mediaLabel(media.content_type))); });
    if (message.options && message.options.length) { item.appendChild(choices(message.options)); }
    if (message.sender === "patient") {
      understood[message.id] = message;
      item.appendChild(line("meta", clock(message.created_at)));
    } else if (message.sender === "bot") {
      item.appendChild(line("meta", understanding(understood[message.reply_to])));
    } else {
      item.appendChild(line("meta", clock(message.created_at)));
    }
    log.appendChild(item);
    scrollDown();
  }

  function choices(options) {
    var box = document.createElement("div");
    box.className = "sim-choices " + (options.length > 3 ? "as-list" : "as-buttons");
    options.forEach(function (option) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "secondary sim-choice";
      button.dataset.choice = option.id;
      button.textContent = option.title;
      button.addEventListener("click", function () { send(option.title, null, option.id); });
      box.appendChild(button);
    });
    return box;
  }

  function info(text, id) {
    var item = document.createElement("li");
    item.className = "sim-info";
    item.textContent = text;
    if (id) { item.id = id; }
    log.appendChild(item);
    scrollDown();
  }

  function showError(text) {
    var box = $("sim-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function request(url, options) {
    return fetch(url, Object.assign({ credentials: "same-origin" }, options)).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) { throw new Error(data.message || texts.network); }
        return data;
      });
    }, function () { throw new Error(texts.network); });
  }

  function post(url, body) {
    return request(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": root.dataset.csrf },
      body: JSON.stringify(body)
    });
  }

  function send(text, media, choiceId) {
    if (busy) { return; }
    busy = true;
    showError("");
    $("sim-send").disabled = true;
    var body = { number: number(), name: $("sim-name").value, text: text, media: media || null };
    body.choice_id = choiceId || null;
    post(root.dataset.send, body)
      .then(function (data) {
        bubble(data.inbound);
        data.replies.forEach(bubble);
        if (!data.replies.length) { info(fill(texts.no_reply, { reason: data.inbound.reason || "-" })); }
        $("sim-text").value = "";
      })
      .catch(function (error) { showError(error.message); })
      .then(function () { busy = false; $("sim-send").disabled = false; $("sim-text").focus(); });
  }

  function poll() {
    if (busy || !number()) { return; }
    var mine = generation;
    var url = root.dataset.messages + "?" + new URLSearchParams({ number: number(), after: lastId });
    request(url).then(function (data) {
      if (mine === generation) { data.messages.forEach(bubble); }
    }).catch(function () { /* offline for a moment: try again next time */ });
  }

  function switchPatient() {
    var known = Array.prototype.find.call($("sim-recent").options, function (option) { return option.value === number(); });
    if (known && known.textContent) { $("sim-name").value = known.textContent; }
    generation += 1;
    seen = {};
    understood = {};
    lastId = 0;
    log.textContent = "";
    info(texts.empty_chat, "sim-empty");
    $("sim-who").textContent = number();
    showError("");
    updateDownload();
    poll();
  }

  function newNumber() {
    var digits = new Uint32Array(1);
    crypto.getRandomValues(digits);
    $("sim-number").value = "+6200" + String(digits[0] % 1000000000).padStart(9, "0");
    switchPatient();
  }

  function updateDownload() {
    var params = new URLSearchParams({ number: number(), name: $("sim-fixture-name").value });
    $("sim-download").href = root.dataset.download + "?" + params;
  }

  function fixture(write) {
    var body = { number: number(), name: $("sim-fixture-name").value };
    var path = $("sim-fixture-path");
    if (write && path) { body.path = path.value; }
    var status = $("sim-fixture-status");
    status.hidden = true;
    post(root.dataset.fixture, body).then(function (data) {
      status.className = "notice";
      status.textContent = data.written ? fill(texts.saved, { path: data.written }) : fill(texts.previewed, { turns: data.turns });
      status.hidden = false;
      var notes = $("sim-notes");
      var list = notes.querySelector("ul");
      list.textContent = "";
      data.notes.forEach(function (note) {
        var item = document.createElement("li");
        item.textContent = fill(texts.note, note);
        list.appendChild(item);
      });
      $("sim-notes-title").textContent = texts.notes_title;
      notes.hidden = !data.notes.length;
      $("sim-yaml").textContent = data.yaml;
      $("sim-yaml").hidden = false;
    }).catch(function (error) {
      status.className = "error";
      status.textContent = error.message;
      status.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    root = $("simulator");
    if (!root) { return; }
    texts = JSON.parse($("sim-texts").textContent);
    log = $("sim-log");
    generation = 0;
    busy = false;
    $("sim-compose").addEventListener("submit", function (event) {
      event.preventDefault();
      var text = $("sim-text").value;
      if (text.trim()) { send(text); }
    });
    $("sim-text").addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("sim-compose").requestSubmit();
      }
    });
    $("sim-image").addEventListener("click", function () { send($("sim-text").value, "image"); });
    $("sim-voice").addEventListener("click", function () { send($("sim-text").value, "voice"); });
    $("sim-number").addEventListener("change", switchPatient);
    $("sim-new").addEventListener("click", newNumber);
    $("sim-fixture-name").addEventListener("input", updateDownload);
    $("sim-preview").addEventListener("click", function () { fixture(false); });
    $("sim-fixture").addEventListener("submit", function (event) { event.preventDefault(); fixture(true); });
    switchPatient();
    setInterval(poll, 2000);
  });
})();
