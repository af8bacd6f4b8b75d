#!/bin/sh
# Trains the tiny mT5-style SentencePiece unigram model used by the tokenizer tests (Debian package sentencepiece 0.1.97).
# T5 layout: pad 0, </s> 1, <unk> 2, no BOS (bos_id -1, like mT5's spiece.model, which Microsoft.ML.Tokenizers cannot load as is).
set -e
cd "$(dirname "$0")"
spm_train --input=corpus.txt --model_prefix=spiece --model_type=unigram --vocab_size=350 \
  --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 \
  --pad_piece='<pad>' --eos_piece='</s>' --unk_piece='<unk>' \
  --input_sentence_size=0 --shuffle_input_sentence=false --num_threads=1 --seed_sentencepiece_size=100000
rm -f spiece.vocab
# Expected ids (no EOS: spm_encode does not append one) for the texts in samples.txt, one line each.
spm_encode --model=spiece.model --output_format=id < samples.txt > samples.ids
