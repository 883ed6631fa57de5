// Tributary console: confirmations, Replay-all progress and the events live tail.
'use strict';
document.addEventListener('submit', (ev) => {
  const f = ev.target;
  if (f.dataset.confirm && !window.confirm(f.dataset.confirm)) { ev.preventDefault(); return; }
  if (f.dataset.progress) {
    const p = f.querySelector('.progress');
    if (p) p.textContent = f.dataset.progress;
  }
  // After the form data is built: a disabled submitter would drop its name=value.
  setTimeout(() => f.querySelectorAll('button').forEach((b) => { b.disabled = true; }), 0);
});

(function tail() {
  const table = document.getElementById('events');
  if (!table) return;
  const body = table.querySelector('tbody');
  let after = '';
  const cell = (tr, text) => { const td = document.createElement('td'); td.textContent = text || '—'; tr.appendChild(td); };
  async function poll() {
    try {
      for (;;) {
        const res = await fetch(table.dataset.tail + '?limit=200&after=' + encodeURIComponent(after), { credentials: 'same-origin' });
        if (!res.ok) break;
        const page = await res.json();
        for (const e of page.data) {
          const tr = document.createElement('tr');
          cell(tr, (e.detectedAt || e.eventTimestamp || '').replace('T', ' ').replace(/\..*|Z$/, ''));
          cell(tr, e.topic); cell(tr, e.updateType); cell(tr, e.connectionId); cell(tr, e.source); cell(tr, e.id);
          body.insertBefore(tr, body.firstChild);
        }
        if (page.nextCursor) after = page.nextCursor;
        if (page.data.length < 200) break;
      }
    } finally {
      setTimeout(poll, 2000);
    }
  }
  poll();
})();
