"""The README and the pages under docs/: every relative link points to a file that exists,
every docs page is linked from the README, and what other files point to in the README is
still there."""

import glob
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md'] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))

_FENCE = re.compile(r'^```.*?^```', re.S | re.M)
_CODE = re.compile(r'`[^`\n]*`')
_LINK = re.compile(r'!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')


def relative_links(text):
  """The relative targets of the Markdown links in `text`, without their #anchors; links
  inside code blocks and code spans are text, not links."""
  text = _CODE.sub('', _FENCE.sub('', text))
  targets = []
  for target in _LINK.findall(text):
    if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I) or target.startswith('#'):
      continue   # http:, https:, mailto: ...; an anchor in the same page
    targets.append(target.split('#', 1)[0])
  return targets


def broken_links(page):
  """[(page, target)] for the relative links of `page` (a path under ROOT) that lead nowhere."""
  with open(os.path.join(ROOT, page), encoding='utf-8') as f:
    text = f.read()
  base = os.path.dirname(os.path.join(ROOT, page))
  return [(page, t) for t in relative_links(text)
          if not os.path.exists(os.path.normpath(os.path.join(base, t)))]


def test_the_link_finder_skips_code_and_urls_and_keeps_relative_targets():
  text = ('[a](docs/a.md) ![b](fig.png) [c](https://x.org/y.md) [d](#top) [e](../B.md#part)\n'
          '`[f](nope.md)`\n```\n[g](nope2.md)\n```\n')
  assert relative_links(text) == ['docs/a.md', 'fig.png', '../B.md']


def test_docs_pages_exist():
  assert len(PAGES) > 1, 'no pages under docs/'


@pytest.mark.parametrize('page', PAGES)
def test_every_relative_link_points_to_an_existing_file(page):
  assert broken_links(page) == []


def test_the_readme_links_every_docs_page():
  with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
    linked = {os.path.normpath(t) for t in relative_links(f.read())}
  assert [p for p in PAGES[1:] if os.path.normpath(p) not in linked] == []


def test_what_the_notebook_points_to_in_the_readme_is_there():
  """tools/colab_tpu.ipynb sends users to a README section by name."""
  with open(os.path.join(ROOT, 'tools', 'colab_tpu.ipynb'), encoding='utf-8') as f:
    cells = json.load(f)['cells']
  source = ''.join(''.join(cell['source']) for cell in cells)
  names = re.findall(r'see README, "([^"]+)"', source)
  with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
    readme = f.read()
  assert [n for n in names if n not in readme] == []
