// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";

/// @title TestWallet
/// @notice A minimal smart-contract wallet for tests: it holds tokens and signs through ERC-1271.
///         Like many smart accounts, a signature of it is its owner's ECDSA signature behind a
///         scheme byte (0x01), so it is never mistaken for an EOA's 65-byte signature.
contract TestWallet is IERC1271 {
    bytes4 private constant _MAGIC = IERC1271.isValidSignature.selector; // 0x1626ba7e
    bytes1 public constant SCHEME_OWNER_ECDSA = 0x01;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 66 || signature[0] != SCHEME_OWNER_ECDSA) return 0xffffffff;
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature[1:]);
        return err == ECDSA.RecoverError.NoError && signer == owner ? _MAGIC : bytes4(0xffffffff);
    }
}

/// @title TestWalletFactory
/// @notice Deploys TestWallets at addresses known before deployment (CREATE2), so a wallet can be
///         paid and can sign (ERC-6492) before it exists.
contract TestWalletFactory {
    event WalletCreated(address indexed wallet, address indexed owner);

    function createWallet(address owner, bytes32 salt) external returns (address wallet) {
        wallet = walletAddress(owner, salt);
        if (wallet.code.length == 0) {
            new TestWallet{salt: salt}(owner);
            emit WalletCreated(wallet, owner);
        }
    }

    function walletAddress(address owner, bytes32 salt) public view returns (address) {
        bytes32 codeHash = keccak256(abi.encodePacked(type(TestWallet).creationCode, abi.encode(owner)));
        return Create2.computeAddress(salt, codeHash);
    }
}

/// @title TestGasBurner
/// @notice An attacker's code for tests: put at a payer's address (as an EIP-7702 delegation would),
///         USDC asks it whether the payer signed (ERC-1271) inside the paying call. In a simulation
///         (eth_call, no gas price) it says yes; in a real transaction it burns every bit of gas it
///         is given — in a shared transaction, the gas of every call after it.
contract TestGasBurner {
    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        if (tx.gasprice == 0) return 0x1626ba7e;
        uint256 spin = 1;
        while (gasleft() > 0) {
            spin = uint256(keccak256(abi.encode(spin)));
        }
        return bytes4(uint32(spin));
    }
}
