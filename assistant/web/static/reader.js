// The reader panel's js_on_load (Gradio gives it `element`, `trigger` and `watch`).
// Clicks on any citation link in the page (chat, search, corpus) open the reader panel; after an
// update the highlighted quote is scrolled into the middle of the article text. "edit" after a
// "Searched for" line puts that query in the question box, to correct it and ask again.
const open = (event) => {
  const wanted = 'a[href^="#cite-"], a[href="#edit-query"], a[href="#back-to-chat"]';
  const link = event.target.closest && event.target.closest(wanted);
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  if (link.getAttribute('href') === '#back-to-chat') {
    document.querySelector('#main').scrollIntoView({behavior: 'smooth'});
    return;
  }
  if (link.getAttribute('href') === '#edit-query') {
    const query = link.closest('.searched-for').querySelector('.query').textContent;
    const box = document.querySelector('#question textarea');
    box.value = query;
    box.dispatchEvent(new Event('input', {bubbles: true}));
    box.focus();
    return;
  }
  trigger('click', {cite: link.getAttribute('href')});
};
if (window.__assistantReaderClick) {
  document.removeEventListener('click', window.__assistantReaderClick, true);
}
window.__assistantReaderClick = open;
document.addEventListener('click', open, true);
watch('value', () => {
  const box = element.querySelector('.reader-text');
  const mark = element.querySelector('mark.cited');
  if (!box) return;
  box.scrollTop = mark ? Math.max(0, mark.offsetTop - box.clientHeight / 3) : 0;
  if (window.innerWidth < 900) element.scrollIntoView({behavior: 'smooth'});
});
