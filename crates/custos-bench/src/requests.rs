//! Rights requests in process: an access request submitted, verified,
//! carried out and answered for subjects picked at random among those the
//! benchmark wrote, and the access report alone (assembled from the policy,
//! every stored version of the person's data and their choices).

use std::time::Instant;

use custos_vault::{By, ResponseFormat, Submission, VerifyMethod};

use crate::figures::{XorShift, mean_us, pct_us};
use crate::in_process::BenchVault;

/// Times `rounds` access requests, each among `ids`, and prints the figures.
pub fn access_requests(vault: &BenchVault, ids: &[String], rounds: usize, rng: &mut XorShift) -> anyhow::Result<()> {
    anyhow::ensure!(!ids.is_empty(), "no subjects to request access for");
    let mut flow = Vec::with_capacity(rounds);
    let mut report = Vec::with_capacity(rounds);
    let mut kinds_refused = 0usize;
    for _ in 0..rounds {
        let id = &ids[(rng.next_u64() as usize) % ids.len()];
        let t = Instant::now();
        let submitted =
            vault.submit_request(&Submission { subject: id, kind: "access", ..Submission::default() }, &By::Cli)?;
        if submitted.denial.is_some() {
            // A second open access request of the same person, or a jurisdiction without the right.
            kinds_refused += 1;
            continue;
        }
        if submitted.status != custos_core::request::RequestStatus::Verified {
            vault.verify_request(&submitted.id, VerifyMethod::Session, &By::Cli)?;
        }
        vault.execute_request(&submitted.id, &By::Cli)?;
        let r = Instant::now();
        let response = vault.request_response(&submitted.id, &By::Cli)?;
        let json = response.render(ResponseFormat::Json);
        report.push(r.elapsed());
        flow.push(t.elapsed());
        std::hint::black_box(json);
    }
    anyhow::ensure!(
        !flow.is_empty(),
        "every access request was refused ({kinds_refused}): does the jurisdiction grant access?"
    );
    println!(
        "access report for one person among {} (every version, decrypted, JSON): mean {:.2} ms, p50 {:.2} ms, p99 {:.2} ms (target under 50 ms)",
        ids.len(),
        mean_us(&report) / 1000.0,
        pct_us(&mut report, 50.0) / 1000.0,
        pct_us(&mut report, 99.0) / 1000.0
    );
    println!(
        "access request submitted, verified, carried out and answered: mean {:.2} ms, p99 {:.2} ms ({} requests; {} refused as duplicates)",
        mean_us(&flow) / 1000.0,
        pct_us(&mut flow, 99.0) / 1000.0,
        flow.len(),
        kinds_refused
    );
    Ok(())
}
