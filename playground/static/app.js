// The playground's page: a small Discord client for the local Discord, as the person picked in "You are".
// Every text from the server is put in the page as text (textContent, text nodes, attribute values), never
// parsed as HTML: a member called <img src=x onerror=alert(1)> shows as those characters.
"use strict";

const TEXT = {
  en: {
    title: "Kakehashi playground", youAre: "You are", language: "Client language",
    hour: "+1 hour", day: "+1 day", followUp: "+5 days (follow-up)", nextPrompt: "Next prompt",
    nextRound: "Next round", directMessages: "Direct messages", send: "Send",
    about: "A local Discord on your machine, with the real Kakehashi bot. Pick who you are, type / for its " +
      "commands, press its buttons, and move the clock to see schedules, rounds and follow-ups.",
    admin: "Admin", introduced: "Introduced", notIntroduced: "Not introduced yet", apps: "Apps", you: "you",
    onlyYou: "Only you can see this", thinking: "{bot} is thinking…", edited: "(edited)",
    used: "{name} used {command}", replyingTo: "replying to {name}",
    placeholder: "Message {channel} · type / for commands", cannotWrite: "You cannot send messages here.",
    dmHint: "Kakehashi's commands work in the server's channels; its buttons work here.",
    forumHint: "Open a post to read it and reply.", noMessages: "No messages here yet.",
    noPosts: "No posts yet.", noDms: "No direct messages from Kakehashi yet.", messages: "{n} messages",
    privateThread: "Private thread", archived: "archived", forum: "Forum", commands: "Kakehashi's commands",
    noCommands: "No matching command", cancel: "Cancel", submit: "Submit", actAs: "Act as {name}",
    clockOff: "That schedule is turned off (see /config show).", noAnswer: "The application did not respond.",
    optional: "(optional)", choose: "Choose…", yes: "True", no: "False", apply: "Apply", offline:
      "Disconnected from the playground: is it still running?", movedTo: "Clock moved to {time}",
    userCommands: "Apps", member: "Member", bot: "APP", posts: "posts", by: "by {name}",
  },
  ja: {
    title: "Kakehashi プレイグラウンド", youAre: "操作する人", language: "クライアントの言語",
    hour: "+1時間", day: "+1日", followUp: "+5日（フォローアップ）", nextPrompt: "次のお題",
    nextRound: "次のラウンド", directMessages: "ダイレクトメッセージ", send: "送信",
    about: "あなたのパソコンの中のローカルな Discord で、本物の Kakehashi ボットが動いています。操作する人を選び、" +
      "/ でコマンドを入力し、ボタンを押し、時計を進めると、予定・ラウンド・フォローアップを確かめられます。",
    admin: "管理者", introduced: "自己紹介済み", notIntroduced: "まだ自己紹介していない", apps: "アプリ", you: "あなた",
    onlyYou: "これはあなただけに表示されています", thinking: "{bot} が考えています…", edited: "（編集済み）",
    used: "{name} が {command} を使用しました", replyingTo: "{name} への返信",
    placeholder: "{channel} へのメッセージ · / でコマンド", cannotWrite: "ここにはメッセージを送れません。",
    dmHint: "Kakehashi のコマンドはサーバーのチャンネルで使えます。ボタンはここでも使えます。",
    forumHint: "投稿を開くと読んだり返信したりできます。", noMessages: "まだメッセージはありません。",
    noPosts: "まだ投稿はありません。", noDms: "Kakehashi からのダイレクトメッセージはまだありません。",
    messages: "{n}件のメッセージ", privateThread: "プライベートスレッド", archived: "アーカイブ済み",
    forum: "フォーラム", commands: "Kakehashi のコマンド", noCommands: "一致するコマンドはありません",
    cancel: "キャンセル", submit: "送信", actAs: "{name} として操作する",
    clockOff: "その予定はオフになっています（/config show を参照）。", noAnswer: "アプリケーションが応答しませんでした。",
    optional: "（任意）", choose: "選択…", yes: "はい", no: "いいえ", apply: "決定",
    offline: "プレイグラウンドとの接続が切れました。まだ動いていますか？", movedTo: "時計を {time} に進めました",
    userCommands: "アプリ", member: "メンバー", bot: "アプリ", posts: "件の投稿", by: "{name}",
  },
};

const ICONS = {
  text: "M9.5 3 7.5 21M16.5 3l-2 18M4 8.5h16.5M3.5 15.5h16.5",
  forum: "M3.5 4.5h12v9h-7l-5 4v-13ZM18.5 8.5h2v11l-3.5-2.5h-7.5v-2.5",
  thread: "M6 3.5v9a4.5 4.5 0 0 0 4.5 4.5H19M15.5 13.5 19 17l-3.5 3.5",
  post: "M6 3.5v9a4.5 4.5 0 0 0 4.5 4.5H19M15.5 13.5 19 17l-3.5 3.5",
  private: "M7.5 11V8a4.5 4.5 0 0 1 9 0v3M5.5 11h13v9.5h-13Z",
  dm: "M3.5 5h17v11h-11l-6 4.5V5Z",
  eye: "M2 12s3.5-6.5 10-6.5S22 12 22 12s-3.5 6.5-10 6.5S2 12 2 12Zm10 3a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z",
  clip: "M16.5 6.5 8.8 14.2a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.7-5.7L5.9 11.3a6 6 0 0 0 8.5 8.5l6.1-6.1",
};

const state = {
  world: null, view: null, commands: null, me: "", lang: "", channel: "",
  dmSeen: {}, refreshing: false, again: false, form: null, menu: [], menuIndex: 0, timers: {},
};

const $ = (selector) => document.querySelector(selector);

// ------------------------------------------------------------------ small helpers

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replace a part of the page only when what it shows changed: a rebuild would close a list being opened
// under the pointer, and lose the element being clicked.
function renderPart(container, signature, build) {
  if (container.dataset.signature === signature) return;
  container.dataset.signature = signature;
  container.replaceChildren(...build());
}

function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", `icon icon-${name}`);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || ICONS.text);
  svg.append(path);
  return svg;
}

function t(key, vars = {}) {
  const template = (TEXT[state.lang] || TEXT.en)[key] ?? TEXT.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

// The template with nodes in its places ("{name} used {command}" with the command styled).
function tNodes(key, vars) {
  const template = (TEXT[state.lang] || TEXT.en)[key] ?? TEXT.en[key];
  return template.split(/\{(\w+)\}/).map((part, i) => (i % 2 ? vars[part] : part));
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

function toast(message, kind = "info") {
  const note = el("div", {class: `toast ${kind}`, role: "status"}, message);
  $("#toasts").append(note);
  setTimeout(() => note.remove(), kind === "error" ? 8000 : 4000);
}

function person(id) {
  return state.world.people.find((p) => p.id === id);
}

const PALETTE = ["#5865f2", "#3ba55c", "#faa61a", "#ed4245", "#eb459e", "#1abc9c", "#e67e22", "#9b59b6"];

function avatar(name, isBot = false) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const face = el("span", {class: "avatar" + (isBot ? " bot" : ""), "aria-hidden": "true"},
    isBot ? "架" : Array.from(name.replace(/^[\s(]+/, ""))[0] || "?");
  if (!isBot) face.style.backgroundColor = PALETTE[hash % PALETTE.length];
  return face;
}

function safeUrl(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

// ------------------------------------------------------------------ time, on the playground's clock

function zone() {
  return state.world ? state.world.timezone : "UTC";
}

function locale() {
  return state.lang === "ja" ? "ja-JP" : "en-GB";
}

function dayOf(date) {
  return new Intl.DateTimeFormat("en-CA", {timeZone: zone(), year: "numeric", month: "2-digit", day: "2-digit"})
    .format(date);
}

function clockText(iso) {
  return new Intl.DateTimeFormat(locale(), {
    timeZone: zone(), weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}

function shortTime(iso) {
  const date = new Date(iso);
  const now = state.view ? new Date(state.view.now) : new Date();
  const options = {timeZone: zone(), hour: "2-digit", minute: "2-digit"};
  if (dayOf(date) !== dayOf(now)) Object.assign(options, {month: "short", day: "numeric"});
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

function discordTime(seconds, style) {
  const date = new Date(seconds * 1000);
  const base = {timeZone: zone()};
  const formats = {
    t: {hour: "2-digit", minute: "2-digit"},
    T: {hour: "2-digit", minute: "2-digit", second: "2-digit"},
    d: {year: "numeric", month: "2-digit", day: "2-digit"},
    D: {year: "numeric", month: "long", day: "numeric"},
    f: {year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit"},
    F: {weekday: "long", year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit"},
  };
  const full = new Intl.DateTimeFormat(locale(), {...base, ...formats.F}).format(date);
  if (style !== "R") {
    return {text: new Intl.DateTimeFormat(locale(), {...base, ...(formats[style] || formats.f)}).format(date), full};
  }
  const now = state.view ? new Date(state.view.now).getTime() : Date.now();
  const diff = (date.getTime() - now) / 1000;
  const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60],
    ["second", 1]];
  const [unit, size] = units.find(([, s]) => Math.abs(diff) >= s) || ["second", 1];
  const relative = new Intl.RelativeTimeFormat(locale(), {numeric: "auto"});
  return {text: relative.format(Math.round(diff / size), unit), full};
}

// ------------------------------------------------------------------ Discord's markup, as text

function renderText(segments, className = "markdown") {
  const lines = [[]];
  for (const segment of segments) {
    if (segment.t !== "text") {
      lines[lines.length - 1].push(segment);
      continue;
    }
    segment.v.split("\n").forEach((part, i) => {
      if (i > 0) lines.push([]);
      if (part) lines[lines.length - 1].push({t: "text", v: part});
    });
  }
  while (lines.length > 1 && lines[lines.length - 1].length === 0) lines.pop();
  const out = el("div", {class: className});
  let code = null;
  for (const line of lines) {
    const first = line[0];
    const raw = first && first.t === "text" ? first.v : "";
    if (line.length <= 1 && raw.trim().startsWith("```")) {
      if (code) {
        out.append(code);
        code = null;
      } else {
        code = el("pre", {class: "code-block"});
      }
      continue;
    }
    if (code) {
      code.append(line.map((s) => (s.t === "text" ? s.v : `${s.v}`)).join("") + "\n");
      continue;
    }
    let kind = "line";
    let rest = line;
    const rules = [[/^(#{1,3}) +/, (m) => `line h${m[1].length}`], [/^-# +/, () => "line subtext"],
      [/^>>?>? +/, () => "line quote"], [/^[-*] +/, () => "line bullet"]];
    for (const [pattern, cls] of rules) {
      const found = raw.match(pattern);
      if (found) {
        kind = cls(found);
        rest = [{t: "text", v: raw.slice(found[0].length)}, ...line.slice(1)];
        break;
      }
    }
    const div = el("div", {class: kind});
    appendInline(div, rest);
    out.append(div);
  }
  if (code) out.append(code);
  return out;
}

function appendInline(parent, segments) {
  for (const segment of segments) {
    if (segment.t === "text") {
      inlineMarkdown(parent, segment.v);
    } else if (segment.t === "user") {
      parent.append(el("span", {class: "mention", data: {userId: segment.id},
        onclick: (event) => showPerson(segment.id, event.currentTarget)}, `@${segment.v}`));
    } else if (segment.t === "channel") {
      parent.append(el("span", {class: "mention channel-mention", onclick: () => openChannel(segment.id)},
        `#${segment.v}`));
    } else if (segment.t === "role") {
      parent.append(el("span", {class: "mention"}, `@${segment.v}`));
    } else if (segment.t === "time") {
      const moment = discordTime(segment.v, segment.style);
      parent.append(el("time", {class: "timestamp", title: moment.full}, moment.text));
    }
  }
}

const INLINE = new RegExp([
  /\*\*(.+?)\*\*/.source, /__(.+?)__/.source, /\*([^*\s](?:[^*]*[^*\s])?)\*/.source,
  /(?<![\w])_([^_\s](?:[^_]*[^_\s])?)_(?![\w])/.source, /`([^`]+)`/.source, /~~(.+?)~~/.source,
  /\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/.source, /(https?:\/\/[^\s<]+[^\s<.,:;"')\]])/.source,
].join("|"));

function inlineMarkdown(parent, text) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) {
      parent.append(rest);
      return;
    }
    if (m.index > 0) parent.append(rest.slice(0, m.index));
    const [, bold, underline, star, under, code, strike, label, href, bare] = m;
    if (bold !== undefined) inlineMarkdown(parent.appendChild(el("strong")), bold);
    else if (underline !== undefined) inlineMarkdown(parent.appendChild(el("u")), underline);
    else if (star !== undefined) inlineMarkdown(parent.appendChild(el("em")), star);
    else if (under !== undefined) inlineMarkdown(parent.appendChild(el("em")), under);
    else if (code !== undefined) parent.append(el("code", {}, code));
    else if (strike !== undefined) inlineMarkdown(parent.appendChild(el("s")), strike);
    else if (label !== undefined) parent.append(el("a", {href, target: "_blank", rel: "noopener noreferrer"}, label));
    else if (bare !== undefined) parent.append(el("a", {href: bare, target: "_blank", rel: "noopener noreferrer"}, bare));
    rest = rest.slice(m.index + m[0].length);
  }
}

// ------------------------------------------------------------------ messages

function renderMessage(m, grouped) {
  const node = el("article", {
    class: "message" + (m.ephemeral ? " ephemeral" : "") + (grouped ? " grouped" : "") +
      (m.author.bot ? " from-bot" : ""),
    data: {messageId: m.id},
  });
  if (m.used) {
    node.append(el("div", {class: "used"}, tNodes("used", {
      name: el("span", {class: "used-name"}, m.used.name), command: el("span", {class: "command-ref"}, m.used.command),
    })));
  }
  if (m.reply) {
    node.append(el("div", {class: "used"}, `↪ ${t("replyingTo", {name: m.reply.name})}: `,
      el("span", {class: "reply-excerpt"}, m.reply.excerpt)));
  }
  const body = el("div", {class: "body"});
  if (!grouped) {
    body.append(el("div", {class: "meta"},
      el("button", {type: "button", class: "author", data: {userId: m.author.id},
        onclick: (event) => showPerson(m.author.id, event.currentTarget)}, m.author.name),
      m.author.bot ? el("span", {class: "badge"}, t("bot")) : null,
      el("time", {class: "sent", title: clockText(m.time)}, shortTime(m.time))));
  }
  if (m.loading) {
    body.append(el("div", {class: "thinking"}, t("thinking", {bot: m.author.name})));
  } else if (m.content.length) {
    const content = renderText(m.content, "markdown content");
    if (m.edited) content.lastChild.append(el("span", {class: "edited"}, ` ${t("edited")}`));
    body.append(content);
  }
  for (const embed of m.embeds) body.append(renderEmbed(embed));
  if (m.attachments.length) body.append(el("div", {class: "attachments"}, m.attachments.map(renderAttachment)));
  if (m.components.length) body.append(renderComponents(m, m.components));
  if (m.reactions.length) {
    body.append(el("div", {class: "reactions"}, m.reactions.map((r) =>
      el("span", {class: "reaction" + (r.me ? " me" : "")}, `${r.emoji} ${r.count}`))));
  }
  if (m.thread) {
    body.append(el("button", {type: "button", class: "thread-link", data: {channelId: m.thread.id},
      onclick: () => openChannel(m.thread.id)}, icon("thread"), el("span", {class: "thread-name"}, m.thread.name),
    el("span", {class: "thread-count"}, t("messages", {n: m.thread.count}))));
  }
  if (m.ephemeral) body.append(el("div", {class: "ephemeral-note"}, icon("eye"), t("onlyYou")));
  node.append(el("div", {class: "gutter"}, grouped ? el("time", {class: "hover-time"}, shortTime(m.time))
    : avatar(m.author.name, m.author.bot)), body);
  return node;
}

function renderEmbed(embed) {
  const box = el("div", {class: "embed"});
  if (/^#[0-9a-f]{6}$/i.test(embed.color)) box.style.borderLeftColor = embed.color;
  if (embed.author) box.append(el("div", {class: "embed-author"}, embed.author));
  if (embed.title) {
    const url = safeUrl(embed.url);
    box.append(el("div", {class: "embed-title"},
      url ? el("a", {href: url, target: "_blank", rel: "noopener noreferrer"}, embed.title) : embed.title));
  }
  if (embed.description.length) box.append(renderText(embed.description, "markdown embed-description"));
  if (embed.fields.length) {
    box.append(el("div", {class: "embed-fields"}, embed.fields.map((field) =>
      el("div", {class: "embed-field" + (field.inline ? " inline" : "")},
        el("div", {class: "embed-field-name"}, field.name), renderText(field.value, "markdown embed-field-value")))));
  }
  if (embed.footer) box.append(el("div", {class: "embed-footer"}, embed.footer));
  return box;
}

function renderAttachment(file) {
  const href = `${file.url}?${new URLSearchParams({as: state.me})}`;
  if (file.image) {
    return el("a", {class: "attachment image", href, target: "_blank", rel: "noopener"},
      el("img", {src: href, alt: file.filename}));
  }
  const size = file.size < 1024 ? `${file.size} B` : `${(file.size / 1024).toFixed(1)} KB`;
  return el("a", {class: "attachment", href, download: file.filename}, icon("clip"),
    el("span", {class: "file-name"}, file.filename), el("span", {class: "file-size"}, size));
}

function renderComponents(message, components) {
  const box = el("div", {class: "components"});
  for (const item of components) {
    if (item.type === 1) {
      box.append(el("div", {class: "component-row"}, (item.components || []).map((c) => renderComponent(message, c))));
    } else {
      box.append(renderComponent(message, item));
    }
  }
  return box;
}

function renderComponent(message, c) {
  if (c.type === 2) return renderButton(message, c);
  if (c.type === 3) return renderSelect(message, c);
  if (c.type === 10 && c.content) return renderText([{t: "text", v: c.content}]);
  if (Array.isArray(c.components)) return renderComponents(message, c.components);
  return null;
}

function emojiText(emoji) {
  if (!emoji) return null;
  return el("span", {class: "emoji"}, emoji.id ? `:${emoji.name}:` : emoji.name);
}

function renderButton(message, c) {
  const inside = [emojiText(c.emoji), c.label ? el("span", {}, c.label) : null];
  if (c.style === 5) {
    const url = safeUrl(c.url);
    return url ? el("a", {class: "btn style-5", href: url, target: "_blank", rel: "noopener noreferrer"}, inside, " ↗")
      : el("span", {class: "btn style-5"}, inside);
  }
  const button = el("button", {type: "button", class: `btn style-${c.style || 2}`, disabled: !!c.disabled,
    data: {customId: c.custom_id}}, inside);
  button.addEventListener("click", async () => {
    button.disabled = true;
    button.classList.add("busy");
    await act("/api/click", {message: message.id, custom_id: c.custom_id});
    button.disabled = !!c.disabled;
    button.classList.remove("busy");
  });
  return button;
}

function renderSelect(message, c) {
  const picked = new Set((c.options || []).filter((o) => o.default).map((o) => o.value));
  const multi = (c.max_values ?? 1) > 1;
  const box = el("div", {class: "select", data: {customId: c.custom_id}});
  const toggle = el("button", {type: "button", class: "select-toggle", disabled: !!c.disabled});
  const menu = el("div", {class: "select-menu", role: "listbox", hidden: true});
  const label = () => {
    const names = (c.options || []).filter((o) => picked.has(o.value)).map((o) => o.label);
    toggle.replaceChildren(el("span", {class: names.length ? "picked-labels" : "placeholder"},
      names.length ? names.join(", ") : (c.placeholder || t("choose"))), el("span", {class: "chevron"}, "▾"));
  };
  const send = () => {
    menu.hidden = true;
    act("/api/select", {message: message.id, custom_id: c.custom_id, values: [...picked]});
  };
  for (const option of c.options || []) {
    const row = el("div", {class: "select-option" + (picked.has(option.value) ? " picked" : ""), role: "option",
      data: {value: option.value}},
    multi ? el("span", {class: "check", "aria-hidden": "true"}) : null,
    el("span", {class: "option-text"}, emojiText(option.emoji), el("span", {class: "option-label"}, option.label),
      option.description ? el("span", {class: "option-description"}, option.description) : null));
    row.addEventListener("click", () => {
      if (!multi) {
        picked.clear();
        picked.add(option.value);
        label();
        send();
        return;
      }
      if (picked.has(option.value)) picked.delete(option.value);
      else picked.add(option.value);
      row.classList.toggle("picked", picked.has(option.value));
      label();
    });
    menu.append(row);
  }
  if (multi) menu.append(el("button", {type: "button", class: "btn style-1 apply", onclick: send}, t("apply")));
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    const opening = menu.hidden;
    closeMenus();
    menu.hidden = !opening;
  });
  label();
  box.append(toggle, menu);
  return box;
}

function closeMenus() {
  for (const menu of document.querySelectorAll(".select-menu")) menu.hidden = true;
}

function renderMessages(view, fresh) {
  const box = $("#messages");
  if (fresh || box.dataset.mode !== "messages") {
    box.replaceChildren();
    box.dataset.mode = "messages";
  }
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  for (const empty of box.querySelectorAll(".empty")) empty.remove();
  const existing = new Map([...box.children].map((node) => [node.dataset.messageId, node]));
  const nodes = [];
  let previous = null;
  let added = false;
  let answered = false;
  for (const m of view.messages) {
    const grouped = previous !== null && previous.author.id === m.author.id && previous.ephemeral === m.ephemeral &&
      !m.used && !m.reply && new Date(m.time) - new Date(previous.time) < 7 * 60 * 1000;
    const key = `${m.rev}:${grouped ? 1 : 0}:${state.lang}:${view.now.slice(0, 16)}`;
    let node = existing.get(m.id);
    if (!node || node.dataset.key !== key) {
      node = renderMessage(m, grouped);
      node.dataset.key = key;
      if (!existing.has(m.id)) {
        added = true;
        if (m.ephemeral || m.author.id === state.me) answered = true;
      }
    }
    nodes.push(node);
    previous = m;
  }
  const keep = new Set(nodes);
  for (const node of existing.values()) if (!keep.has(node)) node.remove();
  let cursor = box.firstElementChild;
  for (const node of nodes) {
    if (node === cursor) {
      cursor = cursor.nextElementSibling;
      continue;
    }
    box.insertBefore(node, cursor);
  }
  if (!nodes.length) {
    box.append(el("p", {class: "empty"}, view.channel && view.channel.kind === "dm" ? t("noDms") : t("noMessages")));
  }
  // Down to what arrived when one was reading the end, or when it answers this person (only they see it).
  if (fresh || (added && (nearBottom || answered))) box.scrollTop = box.scrollHeight;
}

function renderPosts(view) {
  const box = $("#messages");
  box.dataset.mode = "posts";
  box.replaceChildren(...view.posts.map((post) => el("button", {type: "button", class: "post-card",
    data: {channelId: post.id}, onclick: () => openChannel(post.id)},
  el("div", {class: "post-title"}, post.name),
  post.tags.length ? el("div", {class: "tags"}, post.tags.map((tag) => el("span", {class: "tag"}, tag))) : null,
  renderText(post.excerpt, "markdown post-excerpt"),
  el("div", {class: "post-meta"}, t("by", {name: post.author}), " · ", t("messages", {n: post.count}), " · ",
    shortTime(post.time)))));
  if (!view.posts.length) box.append(el("p", {class: "empty"}, t("noPosts")));
  box.scrollTop = 0;
}

// ------------------------------------------------------------------ the frame: sidebar, header, members

function renderChannels(view) {
  renderPart($("#channels"), JSON.stringify([view.channels, state.channel]), () => view.channels.map((c) =>
    el("button", {
      type: "button", title: c.name,
      class: `channel kind-${c.kind}` + (c.parent ? " child" : "") + (c.id === state.channel ? " active" : "") +
        (c.archived ? " archived" : ""),
      data: {channelId: c.id, kind: c.kind}, onclick: () => openChannel(c.id),
    }, icon(c.kind), el("span", {class: "name"}, c.name))));
  const seen = state.dmSeen[state.me] ?? 0;
  if (state.channel === "dm") state.dmSeen[state.me] = view.dm.count;
  const unread = state.channel === "dm" ? 0 : Math.max(0, view.dm.count - seen);
  renderPart($("#dms"), JSON.stringify([state.channel === "dm", unread, state.world.bot.name]), () => [
    el("button", {type: "button", class: "channel dm" + (state.channel === "dm" ? " active" : ""),
      data: {channelId: "dm"}, onclick: () => openChannel("dm")}, avatar("Kakehashi", true),
    el("span", {class: "name"}, state.world.bot.name), unread ? el("span", {class: "unread"}, String(unread)) : null)]);
}

function renderHeader(view) {
  const channel = view.channel;
  renderPart($("#chat-header"), JSON.stringify([channel, state.lang]), () => (channel ? headerParts(channel) : []));
}

function headerParts(channel) {
  const parts = [icon(channel.kind)];
  if (channel.parent) {
    parts.push(el("button", {type: "button", class: "crumb", onclick: () => openChannel(channel.parent.id)},
      channel.parent.name), el("span", {class: "crumb-sep"}, "›"));
  }
  parts.push(el("span", {class: "channel-title"}, channel.name));
  if (channel.kind === "dm") parts.push(el("span", {class: "badge"}, t("bot")));
  if (channel.kind === "private") parts.push(el("span", {class: "chip"}, t("privateThread")));
  if (channel.kind === "forum") parts.push(el("span", {class: "chip"}, t("forum")));
  if (channel.archived) parts.push(el("span", {class: "chip"}, t("archived")));
  for (const tag of channel.tags || []) parts.push(el("span", {class: "tag"}, tag));
  return parts;
}

function renderComposer(view) {
  const input = $("#message-input");
  const channel = view.channel;
  let hint = "";
  let enabled = true;
  if (!channel) enabled = false;
  else if (channel.kind === "dm") [hint, enabled] = [t("dmHint"), false];
  else if (channel.kind === "forum") [hint, enabled] = [t("forumHint"), false];
  else hint = t("placeholder", {channel: channel.kind === "text" ? `#${channel.name}` : channel.name});
  input.placeholder = hint;
  input.disabled = !enabled;
  $("#slash-button").disabled = !enabled;
  $("#send-button").disabled = !enabled;
  if (!enabled) closeCommandForm();
}

function renderMembers() {
  const people = state.world.people;
  const signature = JSON.stringify([people, state.me, state.lang, state.world.bot]);
  if ($("#members").dataset.signature === signature) return;
  $("#members").dataset.signature = signature;
  const groups = [["admin", people.filter((p) => p.admin)], ["introduced", people.filter((p) => !p.admin && p.introduced)],
    ["notIntroduced", people.filter((p) => !p.admin && !p.introduced)]];
  const out = [];
  for (const [key, list] of groups) {
    if (!list.length) continue;
    out.push(el("h2", {class: "section"}, `${t(key)} — ${list.length}`));
    for (const p of list) {
      out.push(el("button", {type: "button", class: "member" + (p.id === state.me ? " me" : ""), data: {memberId: p.id},
        title: p.name, onclick: (event) => showPerson(p.id, event.currentTarget)},
      avatar(p.name), el("span", {class: "name"}, p.name), p.id === state.me ? el("span", {class: "you"}, t("you")) : null));
    }
  }
  out.push(el("h2", {class: "section"}, `${t("apps")} — 1`),
    el("div", {class: "member"}, avatar("Kakehashi", true), el("span", {class: "name"}, state.world.bot.name),
      el("span", {class: "badge"}, t("bot"))));
  $("#members").replaceChildren(...out);
}

function renderPicker() {
  const people = state.world.people;
  const groups = [["admin", people.filter((p) => p.admin)], ["introduced", people.filter((p) => !p.admin && p.introduced)],
    ["notIntroduced", people.filter((p) => !p.admin && !p.introduced)]];
  // Rebuilt only when it changed: a rebuild closes the list under the person choosing.
  const signature = JSON.stringify([state.lang, groups.map(([, list]) => list.map((p) => [p.id, p.name]))]);
  if ($("#who").dataset.signature !== signature) {
    $("#who").dataset.signature = signature;
    $("#who").replaceChildren(...groups.filter(([, list]) => list.length).map(([key, list]) =>
      el("optgroup", {label: t(key)}, list.map((p) => el("option", {value: p.id}, p.name)))));
  }
  $("#who").value = state.me;
  $("#lang").value = state.lang;
  $("#server-name").textContent = state.world.server;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  $("#slash-button").title = t("commands");
}

function showPerson(id, anchor) {
  const pop = $("#popover");
  const p = person(id);
  const isBot = state.world.bot.id === id;
  if (!p && !isBot) return;
  const name = p ? p.name : state.world.bot.name;
  const items = [el("div", {class: "pop-head"}, avatar(name, isBot), el("span", {class: "pop-name"}, name))];
  if (p) {
    items.push(el("div", {class: "pop-status"}, p.admin ? t("admin") : t(p.introduced ? "introduced" : "notIntroduced")));
    if (state.commands && state.commands.user.length && state.view.channel && state.view.channel.kind !== "dm") {
      items.push(el("div", {class: "pop-section"}, t("userCommands")));
      for (const command of state.commands.user) {
        items.push(el("button", {type: "button", class: "pop-item", data: {userCommand: command.name}, onclick: () => {
          hidePopover();
          act("/api/user-command", {name: command.name, target: p.id, channel: state.channel});
        }}, command.label));
      }
    }
    if (p.id !== state.me) {
      items.push(el("button", {type: "button", class: "pop-item act-as", onclick: () => {
        hidePopover();
        switchTo(p.id);
      }}, t("actAs", {name: p.name})));
    }
  } else {
    items.push(el("span", {class: "badge"}, t("bot")));
  }
  pop.replaceChildren(...items);
  pop.hidden = false;
  const rect = anchor.getBoundingClientRect();
  const width = pop.offsetWidth;
  const left = rect.left > window.innerWidth / 2 ? rect.left - width - 8 : rect.right + 8;
  pop.style.left = `${Math.max(8, Math.min(left, window.innerWidth - width - 8))}px`;
  pop.style.top = `${Math.max(8, Math.min(rect.top, window.innerHeight - pop.offsetHeight - 8))}px`;
}

function hidePopover() {
  $("#popover").hidden = true;
}

// ------------------------------------------------------------------ slash commands

function matchingCommands(text) {
  const query = text.replace(/^\//, "").trim().toLowerCase().replace(/\s+/g, " ");
  const all = state.commands ? state.commands.slash : [];
  const starts = all.filter((c) => c.path.startsWith(query));
  const contains = all.filter((c) => !c.path.startsWith(query) && c.path.includes(query));
  return [...starts, ...contains];
}

function showCommandMenu(list) {
  const menu = $("#command-menu");
  state.menu = list;
  state.menuIndex = Math.min(state.menuIndex, Math.max(0, list.length - 1));
  const rows = list.map((command, i) => el("div", {
    class: "menu-item" + (i === state.menuIndex ? " active" : ""), role: "option", data: {command: command.path},
    onmousedown: (event) => {
      event.preventDefault();
      openCommandForm(command);
    },
  }, el("span", {class: "command-name"}, `/${command.path}`), el("span", {class: "command-description"}, command.description)));
  menu.replaceChildren(el("div", {class: "menu-title"}, t("commands")),
    ...(rows.length ? rows : [el("div", {class: "menu-empty"}, t("noCommands"))]));
  menu.hidden = false;
  const active = menu.querySelector(".menu-item.active");
  if (active) active.scrollIntoView({block: "nearest"});
}

function hideCommandMenu() {
  $("#command-menu").hidden = true;
  state.menu = [];
  state.menuIndex = 0;
}

function optionControl(option) {
  const name = option.name;
  const required = option.required;
  const select = (choices) => el("select", {name, required},
    el("option", {value: ""}, required ? t("choose") : t("optional")),
    choices.map((c) => el("option", {value: String(c.value), data: {json: JSON.stringify(c.value)}}, c.name)));
  if (option.choices.length) return select(option.choices);
  const lists = state.commands;
  switch (option.type) {
    case "boolean":
      return select([{name: t("yes"), value: true}, {name: t("no"), value: false}]);
    case "user":
    case "mentionable":
      return select(lists.members.map((m) => ({name: m.name, value: m.id})));
    case "role":
      return select(lists.roles.map((r) => ({name: `@${r.name}`, value: r.id})));
    case "channel": {
      const types = option.channel_types;
      return select(lists.channels.filter((c) => (types ? types.includes(c.type) : c.type !== 4))
        .map((c) => ({name: `#${c.name}`, value: c.id})));
    }
    case "integer":
    case "number":
      return el("input", {type: "number", name, required, min: option.min_value, max: option.max_value,
        step: option.type === "integer" ? 1 : "any", placeholder: required ? "" : t("optional")});
    default:
      if (option.autocomplete) return autocompleteControl(option);
      return el("input", {type: "text", name, required, minlength: option.min_length, maxlength: option.max_length,
        autocomplete: "off", placeholder: required ? "" : t("optional")});
  }
}

function autocompleteControl(option) {
  const input = el("input", {type: "text", name: option.name, required: option.required, autocomplete: "off",
    maxlength: option.max_length, placeholder: option.required ? "" : t("optional")});
  const list = el("div", {class: "suggestions", role: "listbox", hidden: true});
  let timer = null;
  let asked = 0;
  const ask = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const mine = ++asked;
      const command = state.form;
      if (!command) return;
      const options = formValues(true);
      options[option.name] = input.value;
      try {
        const answer = await api("/api/autocomplete", {as: state.me, lang: state.lang, channel: state.channel,
          command: command.path, focused: option.name, options});
        if (mine !== asked) return;
        list.replaceChildren(...answer.choices.map((choice) => el("div", {class: "suggestion", role: "option",
          data: {value: JSON.stringify(choice.value)}, onmousedown: (event) => {
            event.preventDefault();
            input.value = choice.name;
            input.dataset.json = JSON.stringify(choice.value);
            list.hidden = true;
          }}, choice.name)));
        list.hidden = answer.choices.length === 0;
      } catch (error) {
        list.hidden = true;
      }
    }, 150);
  };
  input.addEventListener("input", () => {
    delete input.dataset.json;
    ask();
  });
  input.addEventListener("focus", ask);
  input.addEventListener("blur", () => setTimeout(() => {
    list.hidden = true;
  }, 150));
  return el("div", {class: "autocomplete"}, input, list);
}

function formValues(partial = false) {
  const values = {};
  for (const control of $("#command-form").querySelectorAll("[name]")) {
    let value = control.value;
    if (control.tagName === "SELECT" && control.selectedOptions[0] && control.selectedOptions[0].dataset.json) {
      value = JSON.parse(control.selectedOptions[0].dataset.json);
    } else if (control.dataset.json) {
      value = JSON.parse(control.dataset.json);
    }
    if (value === "" && !partial) continue;
    values[control.name] = value;
  }
  return values;
}

function openCommandForm(command) {
  hideCommandMenu();
  state.form = command;
  const form = $("#command-form");
  const fields = command.options.map((option) => el("label", {class: "option" + (option.required ? " required" : ""),
    data: {option: option.name}},
  el("span", {class: "option-name"}, option.name, option.required ? el("span", {class: "star"}, " *") : null),
  el("span", {class: "option-description"}, option.description), optionControl(option)));
  form.replaceChildren(
    el("div", {class: "form-head"}, el("span", {class: "command-name"}, `/${command.path}`),
      el("span", {class: "command-description"}, command.description),
      el("button", {type: "button", class: "close", title: t("cancel"), onclick: closeCommandForm}, "×")),
    fields.length ? el("div", {class: "options"}, fields) : null,
    el("div", {class: "form-actions"}, el("button", {type: "submit", class: "btn style-1", id: "run-command"}, t("send"))));
  form.hidden = false;
  $("#message-input").value = "";
  const first = form.querySelector("[name]") || $("#run-command");
  first.focus();
}

function closeCommandForm() {
  state.form = null;
  const form = $("#command-form");
  form.hidden = true;
  form.replaceChildren();
}

async function runCommand(event) {
  event.preventDefault();
  const command = state.form;
  if (!command) return;
  const button = $("#run-command");
  button.disabled = true;
  const answer = await act("/api/slash", {command: command.path, options: formValues(), channel: state.channel});
  button.disabled = false;
  if (answer) closeCommandForm();
}

// ------------------------------------------------------------------ what the person does

async function act(path, body) {
  try {
    const answer = await api(path, {...body, as: state.me, lang: state.lang});
    if (answer.error === "no-answer") toast(t("noAnswer"), "error");
    if (answer.channel && answer.channel !== state.channel) await openChannel(answer.channel);
    if (answer.modal) openModal(answer.modal);
    refreshSoon();
    return answer;
  } catch (error) {
    toast(error.message, "error");
    return null;
  }
}

function openModal(modal) {
  const form = $("#modal");
  const controls = [];
  const fields = modal.fields.map((field) => {
    const props = {name: field.id, placeholder: field.placeholder, maxlength: field.max, required: field.required,
      minlength: field.min || undefined};
    const control = field.paragraph ? el("textarea", {...props, rows: 3}) : el("input", {...props, type: "text"});
    control.value = field.value;
    controls.push(control);
    return el("label", {class: "modal-field", data: {field: field.id}},
      el("span", {class: "field-label"}, field.label, field.required ? el("span", {class: "star"}, " *") : null),
      field.description ? el("span", {class: "field-description"}, field.description) : null, control);
  });
  const error = el("p", {class: "modal-error", hidden: true});
  const submit = el("button", {type: "submit", class: "btn style-1", id: "modal-submit"}, t("submit"));
  form.replaceChildren(el("h2", {class: "modal-title"}, modal.title), el("div", {class: "modal-fields"}, fields), error,
    el("div", {class: "modal-actions"}, el("button", {type: "button", class: "btn plain", onclick: closeModal},
      t("cancel")), submit));
  form.onsubmit = async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(controls.map((c) => [c.name, c.value]));
    submit.disabled = true;
    try {
      const answer = await api("/api/submit", {as: state.me, lang: state.lang, interaction: modal.interaction, values});
      closeModal();
      if (answer.error === "no-answer") toast(t("noAnswer"), "error");
      refreshSoon();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      submit.disabled = false;
    }
  };
  $("#modal-backdrop").hidden = false;
  (controls[0] || submit).focus();
}

function closeModal() {
  $("#modal-backdrop").hidden = true;
  $("#modal").replaceChildren();
}

async function sendMessage(event) {
  if (event) event.preventDefault();
  const input = $("#message-input");
  const text = input.value;
  if (text.startsWith("/")) {
    const [first] = matchingCommands(text);
    if (first) openCommandForm(first);
    else toast(t("noCommands"), "error");
    return;
  }
  if (!text.trim()) return;
  try {
    await api("/api/message", {as: state.me, lang: state.lang, channel: state.channel, content: text});
    input.value = "";
    resizeInput();
    refreshSoon();
  } catch (error) {
    toast(error.message, "error");
  }
}

function resizeInput() {
  const input = $("#message-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

async function step(to) {
  try {
    const answer = await api("/api/clock", {to});
    if (answer.off) toast(t("clockOff"));
    else toast(t("movedTo", {time: clockText(answer.now)}));
    refreshSoon();
  } catch (error) {
    toast(error.message, "error");
  }
}

// ------------------------------------------------------------------ navigation and refreshing

async function openChannel(id) {
  state.channel = id;
  hidePopover();
  closeMenus();
  await refresh();
}

async function switchTo(id) {
  const p = person(id);
  if (!p) return;
  state.me = id;
  state.lang = p.language;
  closeModal();
  closeCommandForm();
  hideCommandMenu();
  applyLanguage();
  renderPicker();
  renderMembers();
  await refresh();
  await loadCommands();
}

function writeHash() {
  const hash = new URLSearchParams({as: state.me, lang: state.lang, channel: state.channel || ""});
  history.replaceState(null, "", `#${hash}`);
}

async function loadWorld() {
  state.world = await api("/api/world");
}

async function loadCommands() {
  const query = new URLSearchParams({as: state.me, lang: state.lang, channel: state.channel || ""});
  state.commands = await api(`/api/commands?${query}`);
}

async function refresh() {
  if (state.refreshing) {
    state.again = true;
    return;
  }
  state.refreshing = true;
  try {
    const query = new URLSearchParams({as: state.me, lang: state.lang, channel: state.channel || ""});
    const view = await api(`/api/view?${query}`);
    const before = state.view;
    const fresh = !before || !before.channel || !view.channel || before.channel.id !== view.channel.id ||
      before.me.id !== view.me.id || before.me.language !== view.me.language;
    state.view = view;
    state.channel = view.channel ? view.channel.id : state.channel;
    writeHash();
    $("#now").textContent = clockText(view.now);
    $("#now").dateTime = view.now;
    renderChannels(view);
    renderHeader(view);
    renderComposer(view);
    if (view.channel && view.channel.kind === "forum") renderPosts(view);
    else renderMessages(view, fresh);
    document.body.classList.remove("offline");
  } catch (error) {
    toast(error.message, "error");
  } finally {
    state.refreshing = false;
    if (state.again) {
      state.again = false;
      refresh();
    }
  }
}

function refreshSoon() {
  clearTimeout(state.timers.view);
  state.timers.view = setTimeout(refresh, 30);
}

function worldSoon() {
  clearTimeout(state.timers.world);
  state.timers.world = setTimeout(async () => {
    await loadWorld();
    renderPicker();
    renderMembers();
  }, 300);
}

function listen() {
  const events = new EventSource("/api/events");
  events.addEventListener("change", () => {
    document.body.classList.remove("offline");
    refreshSoon();
    worldSoon();
  });
  events.addEventListener("error", () => document.body.classList.add("offline"));
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("#who").addEventListener("change", (event) => switchTo(event.target.value));
  $("#lang").addEventListener("change", async (event) => {
    state.lang = event.target.value;
    applyLanguage();
    renderPicker();
    renderMembers();
    closeCommandForm();
    await refresh();
    await loadCommands();
  });
  for (const button of document.querySelectorAll("[data-step]")) {
    button.addEventListener("click", () => step(button.dataset.step));
  }
  const input = $("#message-input");
  $("#message-form").addEventListener("submit", sendMessage);
  $("#command-form").addEventListener("submit", runCommand);
  $("#slash-button").addEventListener("click", () => {
    if (!$("#command-menu").hidden) {
      hideCommandMenu();
      return;
    }
    input.value = "/";
    input.focus();
    showCommandMenu(matchingCommands("/"));
  });
  input.addEventListener("input", () => {
    resizeInput();
    if (input.value.startsWith("/") && !input.value.includes("\n")) {
      state.menuIndex = 0;
      showCommandMenu(matchingCommands(input.value));
    } else {
      hideCommandMenu();
    }
  });
  input.addEventListener("keydown", (event) => {
    const menuOpen = !$("#command-menu").hidden && state.menu.length;
    if (menuOpen && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const move = event.key === "ArrowDown" ? 1 : -1;
      state.menuIndex = (state.menuIndex + move + state.menu.length) % state.menu.length;
      showCommandMenu(state.menu);
    } else if (menuOpen && (event.key === "Enter" || event.key === "Tab")) {
      event.preventDefault();
      openCommandForm(state.menu[state.menuIndex]);
    } else if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      sendMessage();
    } else if (event.key === "Escape") {
      hideCommandMenu();
    }
  });
  input.addEventListener("blur", () => setTimeout(hideCommandMenu, 150));
  document.addEventListener("click", (event) => {
    if (!event.target.closest("#popover, .member, .author, .mention")) hidePopover();
    if (!event.target.closest(".select")) closeMenus();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    hidePopover();
    closeMenus();
    if (!$("#modal-backdrop").hidden) closeModal();
    else if (state.form) closeCommandForm();
  });
}

async function start() {
  const hash = new URLSearchParams(location.hash.slice(1));
  wire();
  await loadWorld();
  state.me = person(hash.get("as") || "") ? hash.get("as") : state.world.admin;
  state.lang = ["en", "ja"].includes(hash.get("lang")) ? hash.get("lang") : person(state.me).language;
  state.channel = hash.get("channel") || "";
  applyLanguage();
  renderPicker();
  renderMembers();
  await refresh();
  await loadCommands();
  listen();
  document.body.dataset.ready = "true";
}

start().catch((error) => toast(error.message, "error"));
