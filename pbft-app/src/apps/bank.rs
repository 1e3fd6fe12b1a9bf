//! A replicated bank ledger. Money is neither made nor lost: every account
//! is funded from the bank's reserve, and transfers move money between
//! accounts, so the reserve plus all balances always equals
//! [`TOTAL_SUPPLY`]. That invariant is what the simulator checks on every
//! honest replica at every checkpoint.

use pbft_core::typed::StateMachine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// All the money there is.
pub const TOTAL_SUPPLY: u64 = 1_000_000_000;

/// An operation that changes the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankOp {
    /// Opens `account` with `deposit` taken from the reserve.
    Open {
        /// The account's name.
        account: String,
        /// Its opening balance.
        deposit: u64,
    },
    /// Moves `amount` from one account to another; fails cleanly if `from`
    /// holds less.
    Transfer {
        /// The paying account.
        from: String,
        /// The receiving account.
        to: String,
        /// How much.
        amount: u64,
    },
}

/// A read-only question about the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankQuery {
    /// An account's balance.
    Balance {
        /// The account.
        account: String,
    },
}

/// The outcome of an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BankResult {
    /// The account was opened.
    Opened,
    /// The transfer happened.
    Transferred,
    /// The account's balance.
    Balance(u64),
    /// Nothing changed: the paying account holds only this much.
    InsufficientFunds(u64),
    /// Nothing changed: the reserve holds only this much.
    ReserveExhausted(u64),
    /// Nothing changed: the account is already open.
    AlreadyOpen,
    /// Nothing changed: the account does not exist.
    NoSuchAccount(String),
}

/// The ledger: balances by account name and the undistributed reserve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    reserve: u64,
    accounts: BTreeMap<String, u64>,
}

impl Default for Bank {
    fn default() -> Self {
        Bank { reserve: TOTAL_SUPPLY, accounts: BTreeMap::new() }
    }
}

impl Bank {
    /// The balance of `account`, if it is open.
    pub fn balance(&self, account: &str) -> Option<u64> {
        self.accounts.get(account).copied()
    }

    /// Checks that the reserve and the balances add up to [`TOTAL_SUPPLY`].
    pub fn check_total(&self) -> Result<(), String> {
        let total = self.accounts.values().try_fold(self.reserve, |sum, b| sum.checked_add(*b));
        match total {
            Some(TOTAL_SUPPLY) => Ok(()),
            other => Err(format!("reserve + balances = {other:?}, expected {TOTAL_SUPPLY}")),
        }
    }
}

impl StateMachine for Bank {
    type Op = BankOp;
    type Query = BankQuery;
    type Output = BankResult;

    fn execute(&mut self, op: BankOp) -> BankResult {
        match op {
            BankOp::Open { account, deposit } => {
                if self.accounts.contains_key(&account) {
                    return BankResult::AlreadyOpen;
                }
                if deposit > self.reserve {
                    return BankResult::ReserveExhausted(self.reserve);
                }
                self.reserve -= deposit;
                self.accounts.insert(account, deposit);
                BankResult::Opened
            }
            BankOp::Transfer { from, to, amount } => {
                let Some(&paying) = self.accounts.get(&from) else { return BankResult::NoSuchAccount(from) };
                if !self.accounts.contains_key(&to) {
                    return BankResult::NoSuchAccount(to);
                }
                if paying < amount {
                    return BankResult::InsufficientFunds(paying);
                }
                if from != to {
                    self.accounts.insert(from, paying - amount);
                    if let Some(receiving) = self.accounts.get_mut(&to) {
                        *receiving += amount;
                    }
                }
                BankResult::Transferred
            }
        }
    }

    fn query(&self, BankQuery::Balance { account }: BankQuery) -> BankResult {
        match self.accounts.get(&account) {
            Some(balance) => BankResult::Balance(*balance),
            None => BankResult::NoSuchAccount(account),
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.check_total()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbft_core::{codec, ReplicatedStateMachine};

    fn run(bank: &mut Bank, op: BankOp) -> BankResult {
        StateMachine::execute(bank, op)
    }

    #[test]
    fn transfers_move_money_and_fail_cleanly_when_short() {
        let mut bank = Bank::default();
        assert_eq!(run(&mut bank, BankOp::Open { account: "a".into(), deposit: 100 }), BankResult::Opened);
        assert_eq!(run(&mut bank, BankOp::Open { account: "b".into(), deposit: 5 }), BankResult::Opened);
        assert_eq!(run(&mut bank, BankOp::Open { account: "a".into(), deposit: 1 }), BankResult::AlreadyOpen);
        let transfer = |amount| BankOp::Transfer { from: "a".into(), to: "b".into(), amount };
        assert_eq!(run(&mut bank, transfer(60)), BankResult::Transferred);
        assert_eq!(run(&mut bank, transfer(60)), BankResult::InsufficientFunds(40));
        assert_eq!(bank.balance("a"), Some(40));
        assert_eq!(bank.balance("b"), Some(65));
        let to_nobody = BankOp::Transfer { from: "a".into(), to: "z".into(), amount: 1 };
        assert_eq!(run(&mut bank, to_nobody), BankResult::NoSuchAccount("z".into()));
        assert_eq!(bank.check_total(), Ok(()));
    }

    #[test]
    fn a_snapshot_that_breaks_the_total_is_refused() {
        let mut bank = Bank::default();
        run(&mut bank, BankOp::Open { account: "a".into(), deposit: 100 });
        let mut forged = bank.clone();
        forged.accounts.insert("a".into(), 1_000);
        let mut copy = Bank::default();
        assert!(copy.restore(&codec::encode(&forged)).is_err());
        copy.restore(&bank.snapshot()).unwrap();
        assert_eq!(copy, bank);
    }
}
