"""tools/markdown_block.py: a benchmark tool's --write replaces its own block of BENCHMARKS.md
instead of appending a section on every run; the text around the block is kept."""

import os
import re

import pytest
import module_files  # pylint: disable=wrong-import-order

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = ('benchmark_body_models', 'benchmark_fitting', 'benchmark_pipeline',
         'benchmark_resnet', 'benchmark_scaling')


mb = module_files.tool('markdown_block')
BEGIN, END = mb.markers('bench')


def test_replacing_keeps_the_text_around_the_markers_byte_for_byte():
  before = '# Title\r\n\nLesson: tried and not kept.  \n\n' + BEGIN
  after = END + '\n\nHand-written commentary, é.\n\n<!-- other:begin -->x<!-- other:end -->'
  text = before + '\n\n## Old, 2026-01-01\n\n| a |\n|---|\n| 1 |\n\n' + after
  new = mb.replace_block(text, 'bench', '\n## New, 2026-02-02\n\n| a |\n|---|\n| 2 |\n')
  assert new == before + '\n\n## New, 2026-02-02\n\n| a |\n|---|\n| 2 |\n\n' + after


@pytest.mark.parametrize('text, sep', [('', ''), ('# Title\n', '\n'), ('# Title', '\n\n')])
def test_a_missing_block_is_appended_as_a_new_section(text, sep):
  new = mb.replace_block(text, 'bench', '## Run\n\n| a |\n')
  assert new == f'{text}{sep}{BEGIN}\n\n## Run\n\n| a |\n\n{END}\n'


def test_a_second_write_replaces_the_first(tmp_path):
  path = tmp_path / 'BENCHMARKS.md'            # missing: the first write creates it
  mb.write_block(str(path), 'bench', '## Run 1\n\n| 1 |')
  with open(path, 'a', encoding='utf-8') as f:
    f.write('\nWhat run 1 says, by hand.\n')
  mb.write_block(str(path), 'bench', '## Run 2\n\n| 2 |')
  text = path.read_text(encoding='utf-8')
  assert text.count(BEGIN) == 1 and text.count(END) == 1
  assert 'Run 1' not in text and '| 2 |' in text
  assert text.endswith(f'{END}\n\nWhat run 1 says, by hand.\n')
  assert os.listdir(tmp_path) == ['BENCHMARKS.md']   # no temporary file left behind


@pytest.mark.parametrize('text', [
    f'a\n{BEGIN}\nb\n',                          # begin alone
    f'a\n{END}\nb\n',                            # end alone
    f'{BEGIN}\n{BEGIN}\nx\n{END}\n',             # begin twice
    f'{BEGIN}\nx\n{END}\n{BEGIN}\ny\n{END}\n',   # the block twice
    f'{END}\nx\n{BEGIN}\n',                      # end first
])
def test_broken_markers_raise_and_leave_the_file_alone(tmp_path, text):
  with pytest.raises(ValueError, match=re.escape(BEGIN)):
    mb.replace_block(text, 'bench', 'new')
  path = tmp_path / 'B.md'
  path.write_text(text, encoding='utf-8')
  with pytest.raises(ValueError, match=re.escape(str(path))):
    mb.write_block(str(path), 'bench', 'new')
  assert path.read_text(encoding='utf-8') == text


@pytest.mark.parametrize('tool', TOOLS)
def test_each_tool_writes_its_block_through_the_helper(tool):
  with open(os.path.join(ROOT, 'tools', f'{tool}.py'), encoding='utf-8') as f:
    source = f.read()
  assert re.search(rf"markdown_block\.write_block\(\s*[\w.]+, '{tool}'", source)
  assert not re.search(r"""open\([^)]*['"]a['"]""", source)   # no append mode left


def test_benchmarks_md_has_one_block_per_tool():
  with open(os.path.join(ROOT, 'BENCHMARKS.md'), encoding='utf-8') as f:
    text = f.read()
  for tool in TOOLS:
    begin, end = mb.markers(tool)
    assert (text.count(begin), text.count(end)) == (1, 1), tool
    block = text[text.index(begin) + len(begin):text.index(end)]
    # The tools write a top-level section: the block opens with its `## ` heading.
    assert block.lstrip('\n').startswith('## '), tool
    # Laid out as the helper writes it: a re-run changes the block's content only.
    assert mb.replace_block(text, tool, block) == text, tool
