using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace BatchRender.Training.Tokenizers;

/// <summary>Options for a T5-layout SentencePiece unigram model.</summary>
public sealed record SentencePieceTrainOptions
{
    /// <summary>Target vocabulary size; the trainer may stop below it on a small corpus (hard_vocab_limit=false).</summary>
    public int VocabSize { get; init; } = 1000;
    /// <summary>Pieces that are always kept whole (spm's user_defined_symbols). Chinese has no spaces, so on a small
    /// corpus the unigram trainer learns whole phrases ("个大的红色五角星"); naming the attribute words keeps colour,
    /// shape and position words separate pieces, which is what lets the encoder compose unseen combinations.</summary>
    public IReadOnlyList<string> UserDefinedSymbols { get; init; } = [];
    /// <summary>The trainer executable: a name on PATH or a path.</summary>
    public string Executable { get; init; } = "spm_train";
}

/// <summary>Trains a SentencePiece unigram model by running Debian's <c>spm_train</c> (package sentencepiece): ML.Tokenizers
/// loads SentencePiece models but cannot train them. The layout is T5's: &lt;pad&gt; = 0, &lt;/s&gt; = 1, &lt;unk&gt; = 2, no BOS
/// piece (bos_id -1, like mT5's spiece.model; the model's tokenizer loader handles that), full character coverage so
/// every Chinese character is a piece. Single-threaded, so the same corpus gives the same model.</summary>
public static class SentencePieceTrainer
{
    public static byte[] TrainUnigram(IEnumerable<string> corpus, SentencePieceTrainOptions options, CancellationToken cancellationToken = default)
    {
        var work = Directory.CreateTempSubdirectory("batchrender-spm-");
        try
        {
            const string input = "corpus.txt", prefix = "spiece";
            File.WriteAllLines(Path.Combine(work.FullName, input), corpus.Select(l => l.Replace('\n', ' ').Replace('\r', ' ')), new UTF8Encoding(false));
            // Paths relative to the work folder: spm_train records them in the model's trainer_spec, which ships.
            var start = new ProcessStartInfo(options.Executable)
            {
                RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = work.FullName,
            };
            foreach (var arg in new[]
            {
                $"--input={input}", $"--model_prefix={prefix}", $"--vocab_size={options.VocabSize}",
                "--model_type=unigram", "--character_coverage=1.0", "--hard_vocab_limit=false", "--num_threads=1",
                "--pad_id=0", "--eos_id=1", "--unk_id=2", "--bos_id=-1",
                "--pad_piece=<pad>", "--eos_piece=</s>", "--unk_piece=<unk>",
            }) start.ArgumentList.Add(arg);
            if (options.UserDefinedSymbols.Count > 0)
            {
                var bad = options.UserDefinedSymbols.FirstOrDefault(u => u.Length == 0 || u.Contains(',') || u.Any(char.IsWhiteSpace));
                if (bad is not null) throw new ArgumentException($"user-defined symbol '{bad}' is empty or has a comma or white space", nameof(options));
                start.ArgumentList.Add("--user_defined_symbols=" + string.Join(",", options.UserDefinedSymbols.Distinct()));
            }

            Process process;
            try
            {
                process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {options.Executable}");
            }
            catch (Win32Exception e)
            {
                throw new InvalidOperationException(
                    $"'{options.Executable}' was not found: the T5 tokenizer is trained with SentencePiece's spm_train. " +
                    "Install it with 'apt-get install sentencepiece' (Debian/Ubuntu) or put spm_train on PATH.", e);
            }
            using (process)
            {
                var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
                var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
                try { process.WaitForExitAsync(cancellationToken).GetAwaiter().GetResult(); }
                catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw; }
                if (process.ExitCode != 0)
                {
                    var tail = string.Join("\n", (stderr.Result + stdout.Result).Split('\n').TakeLast(15));
                    throw new InvalidOperationException($"{options.Executable} failed with exit code {process.ExitCode}:\n{tail}");
                }
            }
            return File.ReadAllBytes(Path.Combine(work.FullName, prefix + ".model"));
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }
}
