// The big screen's tour pauses while someone interacts: remember the last touch.
(function () {
  function touched() { window.onemapLastInteraction = Date.now(); }
  ["mousemove", "mousedown", "wheel", "keydown", "touchstart"].forEach(function (name) {
    window.addEventListener(name, touched, {passive: true});
  });
})();
