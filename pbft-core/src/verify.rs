//! Verification of whole messages, nested certificates included, against the key book.
//!
//! This is the only way to obtain a [`Verified`] message. Checks here are those
//! that need no replica state: signatures, authorship, digests, and the shape of
//! certificates (sizes, distinct signers, matching contents).

use crate::keys::KeyBook;
use crate::message::{
    batch_digest, CheckpointProof, Committed, Message, NewView, PrePrepare, PreparedCert, Request, ViewChange,
};
use crate::reject::Reject;
use crate::signed::{Signed, Verified};
use crate::ReplicaId;
use std::collections::BTreeSet;

impl KeyBook {
    /// Verifies every signature in `message` and the validity of its nested
    /// certificates; the result may be handed to a replica.
    pub fn verify(&self, message: Message) -> Result<Verified<Message>, Reject> {
        match &message {
            Message::Request(m) => m.check_signature(self)?,
            Message::PrePrepare(m) => check_pre_prepare(self, m)?,
            Message::Prepare(m) => m.check_signature(self)?,
            Message::Commit(m) => m.check_signature(self)?,
            Message::Checkpoint(m) => m.check_signature(self)?,
            Message::ViewChange(m) => check_view_change(self, m)?,
            Message::NewView(m) => check_new_view(self, m)?,
            Message::Status(m) => m.check_signature(self)?,
            Message::Committed(m) => check_committed(self, m)?,
        }
        Ok(Verified::new_unchecked(message))
    }

    /// Verifies a client's request.
    pub fn verify_request(&self, request: Signed<Request>) -> Result<Verified<Signed<Request>>, Reject> {
        request.check_signature(self)?;
        Ok(Verified::new_unchecked(request))
    }
}

fn check_pre_prepare(keys: &KeyBook, pp: &Signed<PrePrepare>) -> Result<(), Reject> {
    pp.check_signature(keys)?;
    let body = pp.payload();
    if keys.quorum().primary(body.view) != body.primary {
        return Err(Reject::WrongPrimary);
    }
    for request in &body.batch {
        request.check_signature(keys)?;
    }
    if batch_digest(&body.batch) != body.digest {
        return Err(Reject::DigestMismatch);
    }
    Ok(())
}

/// Distinct signers, each counted once; `Err` on a repeated signer.
fn distinct(signers: impl IntoIterator<Item = ReplicaId>) -> Result<usize, Reject> {
    let mut seen = BTreeSet::new();
    for signer in signers {
        if !seen.insert(signer) {
            return Err(Reject::InvalidCertificate);
        }
    }
    Ok(seen.len())
}

fn check_checkpoint_proof(keys: &KeyBook, proof: &CheckpointProof) -> Result<(), Reject> {
    if proof.seq == 0 {
        return if proof.checkpoints.is_empty() { Ok(()) } else { Err(Reject::InvalidCertificate) };
    }
    let count = distinct(proof.checkpoints.iter().map(|c| c.payload().replica))?;
    if count < keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate);
    }
    for checkpoint in &proof.checkpoints {
        let body = checkpoint.payload();
        if body.seq != proof.seq || body.state_digest != proof.state_digest {
            return Err(Reject::InvalidCertificate);
        }
        checkpoint.check_signature(keys)?;
    }
    Ok(())
}

fn check_prepared_cert(keys: &KeyBook, cert: &PreparedCert) -> Result<(), Reject> {
    check_pre_prepare(keys, &cert.pre_prepare)?;
    let primary = cert.pre_prepare.payload().primary;
    let count = distinct(cert.prepares.iter().map(|p| p.payload().replica))?;
    if count < keys.quorum().prepare_quorum() {
        return Err(Reject::InvalidCertificate);
    }
    for prepare in &cert.prepares {
        let body = prepare.payload();
        if body.replica == primary
            || body.view != cert.view()
            || body.seq != cert.seq()
            || body.digest != cert.digest()
        {
            return Err(Reject::InvalidCertificate);
        }
        prepare.check_signature(keys)?;
    }
    Ok(())
}

fn check_view_change(keys: &KeyBook, vc: &Signed<ViewChange>) -> Result<(), Reject> {
    vc.check_signature(keys)?;
    let body = vc.payload();
    check_checkpoint_proof(keys, &body.checkpoint)?;
    let mut last_seq = body.checkpoint.seq;
    for cert in &body.prepared {
        // Certificates are listed once per sequence number, in ascending order,
        // above the checkpoint and from views before the one being asked for.
        if cert.seq() <= last_seq || cert.view() >= body.new_view {
            return Err(Reject::InvalidCertificate);
        }
        last_seq = cert.seq();
        check_prepared_cert(keys, cert)?;
    }
    Ok(())
}

fn check_new_view(keys: &KeyBook, nv: &Signed<NewView>) -> Result<(), Reject> {
    nv.check_signature(keys)?;
    let body = nv.payload();
    if keys.quorum().primary(body.view) != body.primary {
        return Err(Reject::WrongPrimary);
    }
    let count = distinct(body.view_changes.iter().map(|vc| vc.payload().replica))?;
    if count < keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate);
    }
    for vc in &body.view_changes {
        if vc.payload().new_view != body.view {
            return Err(Reject::InvalidCertificate);
        }
        check_view_change(keys, vc)?;
    }
    for pp in &body.pre_prepares {
        if pp.payload().view != body.view {
            return Err(Reject::InvalidCertificate);
        }
        check_pre_prepare(keys, pp)?;
    }
    Ok(())
}

fn check_committed(keys: &KeyBook, committed: &Signed<Committed>) -> Result<(), Reject> {
    committed.check_signature(keys)?;
    let body = committed.payload();
    check_pre_prepare(keys, &body.pre_prepare)?;
    let pp = body.pre_prepare.payload();
    let count = distinct(body.commits.iter().map(|c| c.payload().replica))?;
    if count < keys.quorum().quorum() {
        return Err(Reject::InvalidCertificate);
    }
    for commit in &body.commits {
        let c = commit.payload();
        if c.view != pp.view || c.seq != pp.seq || c.digest != pp.digest {
            return Err(Reject::InvalidCertificate);
        }
        commit.check_signature(keys)?;
    }
    Ok(())
}
