"""The app's CSS and the small scripts its HTML panels run (click and scroll handling)."""

# clicks on any [data-clause] (a clause) or [data-job] (an upload's cancel) button inside the HTML
# reach Python as a 'click' event
CLICK_JS = """
element.addEventListener('click', (e) => {
  const b = e.target.closest('[data-clause]');
  if (b) trigger('click', {clause_id: b.dataset.clause, n: b.dataset.n || ''});
  const j = e.target.closest('[data-job]');
  if (j) trigger('click', {job: j.dataset.job});
});
"""


def clicked(evt) -> dict:
    """What CLICK_JS sent with a click (a gr.EventData): {'clause_id', 'n'} or {'job'}; {} for none."""
    return getattr(evt, "_data", None) or {}


# scroll the highlighted clause into view inside the document box whenever a document is shown
SCROLL_JS = """
const focus = () => setTimeout(() => {
  const box = element.querySelector('.pqa-doc-body');
  const target = element.querySelector('.pqa-target');
  if (box && target) {
    box.scrollTop = Math.max(0, target.offsetTop - box.offsetTop - 40);
    element.scrollIntoView({block: 'start'});
  }
}, 60);
focus();
watch('value', focus);
"""

CSS = """
.pqa-empty { color: var(--body-text-color-subdued); padding: 12px; font-size: 14px; }
.pqa-sources { display: flex; flex-direction: column; gap: 10px; }
.pqa-cite { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
            background: var(--background-fill-primary); }
.pqa-cite header { display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.pqa-n { font-weight: 700; color: var(--color-accent); }
.pqa-label { font-weight: 700; font-size: 15px; }
.pqa-path { color: var(--body-text-color-subdued); font-size: 13px; }
.pqa-doc { font-size: 13px; margin: 4px 0; }
.pqa-docno, .pqa-version { margin-left: 6px; padding: 0 6px; border-radius: 4px; background: var(--background-fill-secondary); }
.pqa-text { margin: 6px 0; padding: 6px 10px; border-left: 3px solid var(--border-color-accent);
            white-space: pre-wrap; font-size: 14px; line-height: 1.6; max-height: 260px; overflow: auto; }
.pqa-text mark, .pqa-doc-body mark { background: #ffe066; color: inherit; padding: 0 1px; }
.pqa-open, .pqa-outline button { cursor: pointer; border: 1px solid var(--border-color-primary); border-radius: 6px;
            background: var(--button-secondary-background-fill); padding: 2px 10px; font-size: 13px; }
.pqa-open:hover, .pqa-outline button:hover { background: var(--button-secondary-background-fill-hover); }
.pqa-abstain { border: 2px solid #e8a33d; background: #fff6e5; color: #5c3b00; border-radius: 8px; padding: 10px 12px; }
.pqa-abstain b { display: block; font-size: 15px; margin-bottom: 4px; }
.pqa-uncertain { white-space: pre-wrap; border: 2px dashed #7a8ca8; background: #f1f5fb; color: #233; border-radius: 8px; padding: 10px 12px; }
.pqa-uncertain b { display: block; font-size: 15px; margin-bottom: 4px; }
.pqa-related-title { font-weight: 600; margin-top: 4px; }
.pqa-rewritten, .pqa-notice { border-radius: 6px; padding: 6px 10px; font-size: 13px; }
.pqa-rewritten { background: #e8f1ff; color: #113a6b; }
.pqa-notice { background: #fdecea; color: #6b1d13; }
.pqa-docview h3 { margin: 0 0 4px 0; }
.pqa-doc-meta { color: var(--body-text-color-subdued); font-size: 13px; margin-bottom: 8px; }
.pqa-doc-body { position: relative; white-space: pre-wrap; line-height: 1.7; font-size: 14px; max-height: 560px;
                overflow: auto; border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 12px; }
.pqa-clause { background: #fff8d6; outline: 2px solid #f0c36d; border-radius: 3px; }
.pqa-outline { max-height: 560px; overflow: auto; }
.pqa-outline ul { list-style: none; margin: 0; padding-left: 0; }
.pqa-outline li { margin: 2px 0; }
.pqa-outline button { text-align: left; width: 100%; border: none; background: transparent; }
.pqa-outline .pqa-inferred { color: #a15c00; font-size: 12px; }
.pqa-eval-item .pqa-question { font-size: 16px; font-weight: 600; }
.pqa-eval-item .pqa-history { color: var(--body-text-color-subdued); font-size: 13px; }
.pqa-answer { white-space: pre-wrap; line-height: 1.6; margin: 8px 0; }
.pqa-jobs { list-style: none; padding: 0; margin: 4px 0; font-size: 13px; }
.pqa-job { margin: 4px 0; }
.pqa-job progress { width: 160px; vertical-align: middle; }
.pqa-job-failed .pqa-job-message { color: #6b1d13; }
.pqa-job-message { color: var(--body-text-color-subdued); }
.pqa-table { border-collapse: collapse; font-size: 13px; }
.pqa-table td, .pqa-table th { border: 1px solid var(--border-color-primary); padding: 4px 8px; vertical-align: top; }
"""
