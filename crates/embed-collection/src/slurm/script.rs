//! The submission script of a sharded build: a job array of shard tasks, each writing one shard
//! collection, and a merge job chained after all of them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the build's images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Every image under a folder (`--images DIR`).
    Dir(PathBuf),
    /// A file listing image paths, one a line (`--list FILE`).
    List(PathBuf),
}

/// The `image-sim build` a shard task runs, less `--shard` and `--out` (which the script sets).
/// Each `Option` left `None` leaves that flag out (the command's default applies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildCommand {
    /// The `image-sim` executable as the compute nodes see it (a path or a name on `PATH`).
    pub program: PathBuf,
    /// The images.
    pub images: ImageSource,
    /// `--model`.
    pub model: String,
    /// `--weights`.
    pub weights: Option<PathBuf>,
    /// `--kind` (the index kind).
    pub kind: Option<String>,
    /// `--device`: `cuda`, `cuda:N` or `cpu`. A CUDA device gets one GPU per task.
    pub device: String,
    /// `--precision`.
    pub precision: Option<String>,
    /// `--batch-size`.
    pub batch_size: Option<usize>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// Further arguments passed to `build` as they are.
    pub extra_args: Vec<String>,
    /// The output folder: shards go to `OUT/shards/shard_<i>`, the merged collection to `OUT`,
    /// logs to `OUT/logs`.
    pub out: PathBuf,
}

/// The job options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlurmOptions {
    /// Number of shard tasks (array `0..shards-1`).
    pub shards: usize,
    /// Job name prefix (`NAME-shards`, `NAME-merge`); `image-sim` when empty.
    pub job_name: String,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` of each task and of the merge.
    pub time: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--mem`.
    pub mem: Option<String>,
    /// `--cpus-per-task`.
    pub cpus_per_task: Option<usize>,
    /// Further `sbatch` arguments for both jobs (e.g. `--qos=high`, `--requeue`).
    pub sbatch_args: Vec<String>,
}

/// `s` quoted for bash: unchanged when it holds only safe characters, else in single quotes
/// (a `'` inside becomes `'\''`).
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid(format!("path {} is not UTF-8", p.display())))
}

/// Refuses line breaks and other control characters: the job scripts travel in here-documents.
fn check_arg(s: &str) -> Result<&str> {
    if s.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "argument {s:?} holds a control character"
        )));
    }
    Ok(s)
}

fn words(args: &[String]) -> Result<String> {
    let quoted: Result<Vec<String>> = args.iter().map(|a| check_arg(a).map(shell_quote)).collect();
    Ok(quoted?.join(" "))
}

/// The bash script that, run on a login node, submits the shard array and the merge job and
/// prints both job ids. Each task runs
/// `PROGRAM build ... --shard auto --out OUT/shards/shard_<i>` (with `i` = task id − array
/// minimum, the shard `--shard auto` selects); the merge job runs
/// `PROGRAM merge-shards OUT/shards --out OUT` once every task succeeded
/// (`--dependency=afterok`). A requeued task rewrites its shard from the start.
pub fn slurm_script(build: &BuildCommand, slurm: &SlurmOptions) -> Result<String> {
    if slurm.shards == 0 {
        return Err(Error::Invalid("--shards must be at least 1".into()));
    }
    let out = path_str(&build.out)?;
    let out = out.trim_end_matches('/');
    let program = path_str(&build.program)?;
    let name = if slurm.job_name.is_empty() {
        "image-sim"
    } else {
        slurm.job_name.as_str()
    };

    let mut args = vec!["build".to_owned()];
    match &build.images {
        ImageSource::Dir(d) => args.extend(["--images".into(), path_str(d)?]),
        ImageSource::List(f) => args.extend(["--list".into(), path_str(f)?]),
    }
    args.extend(["--model".into(), build.model.clone()]);
    if let Some(w) = &build.weights {
        args.extend(["--weights".into(), path_str(w)?]);
    }
    if let Some(k) = &build.kind {
        args.extend(["--kind".into(), k.clone()]);
    }
    args.extend(["--device".into(), build.device.clone()]);
    if let Some(p) = &build.precision {
        args.extend(["--precision".into(), p.clone()]);
    }
    if let Some(b) = build.batch_size {
        args.extend(["--batch-size".into(), b.to_string()]);
    }
    if let Some(w) = build.workers {
        args.extend(["--workers".into(), w.to_string()]);
    }
    args.extend(build.extra_args.iter().cloned());
    args.extend(["--shard".into(), "auto".into()]);

    let mut common = Vec::new();
    let mut opt = |flag: &str, v: &Option<String>| {
        if let Some(v) = v {
            common.push(format!("--{flag}={v}"));
        }
    };
    opt("partition", &slurm.partition);
    opt("time", &slurm.time);
    opt("account", &slurm.account);
    opt("mem", &slurm.mem);
    opt("cpus-per-task", &slurm.cpus_per_task.map(|c| c.to_string()));
    common.extend(slurm.sbatch_args.iter().cloned());

    let mut shard_opts = vec![
        "--parsable".to_owned(),
        format!("--job-name={name}-shards"),
        format!("--array=0-{}", slurm.shards - 1),
        format!("--output={out}/logs/shard_%a.out"),
    ];
    let cuda = build.device == "cuda" || build.device.starts_with("cuda:");
    if cuda {
        shard_opts.push("--gres=gpu:1".into());
    }
    shard_opts.extend(common.iter().cloned());
    let mut merge_opts = vec![
        "--parsable".to_owned(),
        format!("--job-name={name}-merge"),
        format!("--output={out}/logs/merge.out"),
    ];
    merge_opts.extend(common);

    let shard_dir = format!("{out}/shards/shard_");
    let merge_args = vec![
        "merge-shards".to_owned(),
        format!("{out}/shards"),
        "--out".into(),
        out.to_owned(),
    ];
    let program = shell_quote(check_arg(&program)?);
    Ok(format!(
        r#"#!/usr/bin/env bash
# Submits a sharded image-sim build: a job array of {shards} shard task(s), then a merge job that
# runs once every shard task has succeeded. Run it on a login node.
set -euo pipefail
mkdir -p -- {out_q}/shards {out_q}/logs

array_job=$(sbatch {shard_opts} <<'IMAGE_SIM_SHARD_JOB'
#!/usr/bin/env bash
set -euo pipefail
# The shard this task writes: what `--shard auto` reads from the same variables.
shard=$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))
exec {program} {build_args} --out {shard_dir_q}"$shard"
IMAGE_SIM_SHARD_JOB
)
array_job=${{array_job%%;*}}

merge_job=$(sbatch --dependency=afterok:"$array_job" {merge_opts} <<'IMAGE_SIM_MERGE_JOB'
#!/usr/bin/env bash
set -euo pipefail
exec {program} {merge_args}
IMAGE_SIM_MERGE_JOB
)
merge_job=${{merge_job%%;*}}

echo "shard array job: $array_job ({shards} tasks, logs in "{out_q}"/logs)"
echo "merge job: $merge_job (runs after every shard task succeeds; writes "{out_q}")"
"#,
        shards = slurm.shards,
        out_q = shell_quote(check_arg(out)?),
        shard_opts = words(&shard_opts)?,
        merge_opts = words(&merge_opts)?,
        build_args = words(&args)?,
        shard_dir_q = shell_quote(check_arg(&shard_dir)?),
        merge_args = words(&merge_args)?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn build(device: &str, out: &str) -> BuildCommand {
        BuildCommand {
            program: "image-sim".into(),
            images: ImageSource::Dir("/data/my images".into()),
            model: "openai/clip-vit-base-patch32".into(),
            weights: Some("/w/it's.safetensors".into()),
            kind: Some("flat".into()),
            device: device.into(),
            precision: Some("f16".into()),
            batch_size: Some(256),
            workers: Some(8),
            extra_args: vec![],
            out: out.into(),
        }
    }

    fn opts() -> SlurmOptions {
        SlurmOptions {
            shards: 4,
            job_name: "disc".into(),
            partition: Some("gpu".into()),
            time: Some("02:00:00".into()),
            cpus_per_task: Some(8),
            sbatch_args: vec!["--qos=high prio".into()],
            ..Default::default()
        }
    }

    /// Quoting survives spaces and quotes, and leaves plain words alone.
    #[test]
    fn quoting() {
        assert_eq!(shell_quote("abc-1_2.x/y"), "abc-1_2.x/y");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }

    /// A CUDA build asks one GPU per shard task and none for the merge; a CPU build asks none.
    #[test]
    fn gpus_only_for_cuda_shard_tasks() {
        let s = slurm_script(&build("cuda", "/out"), &opts()).unwrap();
        assert_eq!(s.matches("--gres=gpu:1").count(), 1);
        let shard_line = s
            .lines()
            .find(|l| l.starts_with("array_job=$(sbatch"))
            .unwrap();
        assert!(shard_line.contains("--gres=gpu:1") && shard_line.contains("--array=0-3"));
        for device in ["cpu", "CUDA-ish"] {
            let s = slurm_script(&build(device, "/out"), &opts()).unwrap();
            assert!(!s.contains("--gres"), "{device}");
        }
        assert!(!s.contains("CUDA_VISIBLE_DEVICES"));
    }

    /// The merge job waits for the whole array and both ids are printed.
    #[test]
    fn merge_is_chained_after_the_array() {
        let s = slurm_script(&build("cuda", "/out/"), &opts()).unwrap();
        assert!(s.contains("--dependency=afterok:\"$array_job\""));
        assert!(s.contains("exec image-sim merge-shards /out/shards --out /out\n"));
        assert!(s.contains("echo \"shard array job: $array_job"));
        assert!(s.contains("echo \"merge job: $merge_job"));
        assert!(s.contains("'--qos=high prio'"));
    }

    /// Zero shards and arguments with line breaks are refused.
    #[test]
    fn bad_inputs_are_refused() {
        let zero = SlurmOptions {
            shards: 0,
            ..opts()
        };
        assert!(slurm_script(&build("cpu", "/o"), &zero).is_err());
        let mut b = build("cpu", "/o");
        b.extra_args.push("a\nIMAGE_SIM_SHARD_JOB".into());
        assert!(slurm_script(&b, &opts()).is_err());
    }

    /// bash parses the script, and a fake `sbatch` sees every argument intact: paths with
    /// spaces and quotes reach the job scripts unchanged.
    #[test]
    fn bash_runs_the_script_with_arguments_intact() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out dir 'x'");
        let s = slurm_script(&build("cuda", out.to_str().unwrap()), &opts()).unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("calls");
        // The fake sbatch records its arguments and the job script, and prints an id.
        let fake = format!(
            "#!/usr/bin/env bash\nn=$(ls {log}* 2>/dev/null | wc -l)\n\
             printf '%s\\n' \"$@\" > {log}.$n.args\ncat > {log}.$n.script\necho $((100 + n))\n",
            log = shell_quote(log.to_str().unwrap())
        );
        std::fs::write(bin.join("sbatch"), fake).unwrap();
        std::process::Command::new("chmod")
            .args(["+x", bin.join("sbatch").to_str().unwrap()])
            .status()
            .unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let run = std::process::Command::new("bash")
            .arg("-c")
            .arg(&s)
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let stdout = String::from_utf8(run.stdout).unwrap();
        assert!(stdout.contains("shard array job: 100"), "{stdout}");
        assert!(stdout.contains("merge job: 102"), "{stdout}");
        assert!(
            stdout.contains(&format!("logs in {}/logs)", out.display())),
            "{stdout}"
        );
        assert!(out.join("logs").is_dir() && out.join("shards").is_dir());
        let read = |n: usize, ext: &str| {
            let mut p = log.as_os_str().to_owned();
            p.push(format!(".{n}.{ext}"));
            std::fs::read_to_string(p).unwrap()
        };
        let shard_args = read(0, "args");
        assert!(shard_args.contains(&format!("--output={}/logs/shard_%a.out", out.display())));
        assert!(shard_args.contains("--qos=high prio\n"));
        let merge_args = read(2, "args");
        assert!(
            merge_args.starts_with("--dependency=afterok:100\n"),
            "{merge_args}"
        );
        // Run the shard job script with a fake image-sim that prints its arguments.
        std::fs::write(
            bin.join("image-sim"),
            "#!/usr/bin/env bash\nprintf '<%s>' \"$@\"\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", bin.join("image-sim").to_str().unwrap()])
            .status()
            .unwrap();
        let job = std::process::Command::new("bash")
            .arg("-c")
            .arg(read(0, "script"))
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("SLURM_ARRAY_TASK_ID", "3")
            .env("SLURM_ARRAY_TASK_MIN", "1")
            .output()
            .unwrap();
        let argv = String::from_utf8(job.stdout).unwrap();
        assert!(
            argv.starts_with("<build><--images></data/my images><--model>"),
            "{argv}"
        );
        assert!(argv.contains("<--weights></w/it's.safetensors>"), "{argv}");
        assert!(argv.contains("<--shard><auto>"), "{argv}");
        assert!(
            argv.ends_with(&format!("<--out><{}/shards/shard_2>", out.display())),
            "{argv}"
        );
    }
}
