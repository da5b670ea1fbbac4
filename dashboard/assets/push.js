// The screens' watch of the data's version (dashboard/push.py says what a page declares).
// A page's heartbeat (a tick a second, and each time its view is drawn) calls
// onemapPush.beat. The watch keeps one ask out at a time: the server holds it until the
// version moves (or up to `hold` seconds) and the next ask leaves as soon as the answer
// comes; a server that did not hold it (busy, or not listening) is asked again at the next
// tick, so a page never asks more than about once a second without a change to show. A
// version newer than the view's asks for one redraw at a time: a newer one found meanwhile
// waits for that redraw to be drawn (or for REDRAW_MS, should it fail), since a second
// request of the same callback would cancel the first.
(function () {
  const REDRAW_MS = 10000;  // a redraw not drawn by then is taken as failed
  const ALIVE_MS = 5000;    // a page whose heartbeat stopped this long ago left the screen
  const screens = {};

  function redraw(mine) {
    const version = mine.latest;
    if (!version || !mine.drawn || version === mine.drawn) { return; }
    if (mine.asked && Date.now() - mine.askedAt < REDRAW_MS) { return; }
    mine.asked = version;
    mine.askedAt = Date.now();
    window.dash_clientside.set_props(mine.target, {data: version});
  }

  function ask(mine) {
    if (mine.out || Date.now() - mine.beat > ALIVE_MS) { return; }
    mine.out = true;
    const since = mine.latest || mine.drawn;
    const began = Date.now();
    let held = false;
    fetch(mine.path + '?since=' + encodeURIComponent(since) + '&wait=' + mine.hold,
          {cache: 'no-store', credentials: 'same-origin'})
      .then(answer => answer.ok ? answer.json() : null)
      .then(answer => {
        held = Boolean(answer && answer.held);
        if (answer && answer.version) {
          mine.latest = answer.version;
          redraw(mine);
        }
      })
      .catch(() => null)
      .finally(() => {
        mine.out = false;
        // At once after a held ask; never again within a second of an unchanged answer.
        if (held && (mine.latest !== since || Date.now() - began >= 1000)) { ask(mine); }
      });
  }

  window.onemapPush = {
    beat: function (prefix, target, drawn, path, hold) {
      const mine = (screens[prefix] = screens[prefix] || {});
      Object.assign(mine, {target: target, path: path, hold: hold, beat: Date.now()});
      if (drawn && drawn !== mine.drawn) {  // a view drawn: the next redraw may be asked
        mine.drawn = drawn;
        mine.asked = null;
      }
      if (!mine.drawn) { return; }
      redraw(mine);
      ask(mine);
    },
    // What the watch of the page `prefix` knows (for tests): the versions and the ask out.
    state: function (prefix) { return Object.assign({}, screens[prefix] || {}); },
  };
})();
