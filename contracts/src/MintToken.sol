// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title MintToken
/// @notice An ERC-20 sold in fixed "mint units" for a payment token (USDC) over x402.
///         Buyers pay the payment token directly to this contract (x402 payTo = this
///         address); an off-chain minter holding MINTER_ROLE then mints `mintAmount`
///         tokens per paid unit, keyed by an idempotency `mintId`. At most
///         `maxMintCount` units can ever be minted.
contract MintToken is ERC20, AccessControl {
    using SafeERC20 for IERC20;

    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    /// @notice May refund a payment whose money arrived but can never be minted.
    bytes32 public constant REFUNDER_ROLE = keccak256("REFUNDER_ROLE");

    /// @notice MintSkipped reason: the mintId was already minted.
    uint8 public constant SKIP_ALREADY_MINTED = 1;
    /// @notice MintSkipped reason: mintCount reached maxMintCount.
    uint8 public constant SKIP_SOLD_OUT = 2;
    /// @notice MintSkipped reason: the recipient is the zero address.
    uint8 public constant SKIP_INVALID_RECIPIENT = 3;

    /// @notice Token the price is paid in (USDC).
    IERC20 public immutable paymentToken;
    /// @notice Price of one mint unit, in payment-token base units.
    uint256 public immutable pricePerMint;
    /// @notice Token base units minted per mint unit.
    uint256 public immutable mintAmount;
    /// @notice Maximum number of mint units that can ever be minted.
    uint256 public immutable maxMintCount;

    /// @notice Mint units minted so far.
    uint256 public mintCount;
    /// @dev Minted ids as a bitmap: id >> 8 selects a word, its low byte the bit. Every bytes32 has
    ///      its own bit; ids that differ only in the low byte (the units of one purchase, as the
    ///      off-chain minter numbers them) share a word, so a purchase's first unit pays for the
    ///      storage slot and the others only flip bits in it.
    mapping(uint256 word => uint256 bits) private _minted;
    /// @notice Payments refunded, by purchase key (the key the mint ids of the payment derive
    ///         from): a payment is refunded at most once, whoever asks.
    mapping(bytes32 paymentKey => bool) public refunded;

    event TokensMinted(address indexed to, uint256 amount, bytes32 indexed mintId);
    event MintSkipped(bytes32 indexed mintId, uint8 reason);
    event Withdrawn(address indexed to, uint256 amount);
    event Refunded(bytes32 indexed paymentKey, address indexed to, uint256 amount);

    error AlreadyMinted(bytes32 mintId);
    error SoldOut();
    error LengthMismatch(uint256 recipients, uint256 mintIds);
    error InvalidConfig();
    error AlreadyRefunded(bytes32 paymentKey);

    constructor(
        string memory name_,
        string memory symbol_,
        address paymentToken_,
        uint256 pricePerMint_,
        uint256 mintAmount_,
        uint256 maxMintCount_,
        address admin
    ) ERC20(name_, symbol_) {
        if (paymentToken_ == address(0) || admin == address(0) || mintAmount_ == 0 || maxMintCount_ == 0) {
            revert InvalidConfig();
        }
        // Reject configurations whose full supply could not be represented.
        if (mintAmount_ > type(uint256).max / maxMintCount_) revert InvalidConfig();

        paymentToken = IERC20(paymentToken_);
        pricePerMint = pricePerMint_;
        mintAmount = mintAmount_;
        maxMintCount = maxMintCount_;

        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Whether a mintId has been minted.
    function hasMinted(bytes32 mintId) public view returns (bool) {
        return (_minted[uint256(mintId) >> 8] >> (uint256(mintId) & 0xff)) & 1 == 1;
    }

    function _markMinted(bytes32 mintId) private {
        _minted[uint256(mintId) >> 8] |= 1 << (uint256(mintId) & 0xff);
    }

    /// @notice Mint units still available.
    function remainingSupply() external view returns (uint256) {
        return maxMintCount - mintCount;
    }

    /// @notice Mint one unit to `to` for the paid purchase `mintId`.
    function mint(address to, bytes32 mintId) external onlyRole(MINTER_ROLE) {
        if (hasMinted(mintId)) revert AlreadyMinted(mintId);
        uint256 count = mintCount;
        if (count >= maxMintCount) revert SoldOut();
        _markMinted(mintId);
        mintCount = count + 1;
        _mint(to, mintAmount);
        emit TokensMinted(to, mintAmount, mintId);
    }

    /// @notice Mint one unit per (recipient, mintId) pair. Items that cannot be minted
    ///         are skipped with a MintSkipped event instead of reverting the batch.
    ///         Every minted id gets its TokensMinted event; the tokens of consecutive items
    ///         for the same recipient are minted at once (one balance write, one Transfer).
    function batchMint(address[] calldata to, bytes32[] calldata mintIds) external onlyRole(MINTER_ROLE) {
        uint256 n = to.length;
        if (n != mintIds.length) revert LengthMismatch(n, mintIds.length);

        uint256 start = mintCount;
        uint256 count = start;
        uint256 max = maxMintCount;
        uint256 amount = mintAmount;
        address runTo; // recipient of the current run of minted items
        uint256 runUnits; // units minted to runTo and not yet credited
        for (uint256 i; i < n; ++i) {
            bytes32 mintId = mintIds[i];
            address recipient = to[i];
            if (hasMinted(mintId)) {
                emit MintSkipped(mintId, SKIP_ALREADY_MINTED);
            } else if (count >= max) {
                emit MintSkipped(mintId, SKIP_SOLD_OUT);
            } else if (recipient == address(0)) {
                emit MintSkipped(mintId, SKIP_INVALID_RECIPIENT);
            } else {
                _markMinted(mintId);
                if (recipient != runTo) {
                    if (runUnits != 0) _mint(runTo, runUnits * amount);
                    runTo = recipient;
                    runUnits = 0;
                }
                unchecked {
                    ++count; // count < max, cannot overflow
                    ++runUnits; // runUnits <= count
                }
                emit TokensMinted(recipient, amount, mintId);
            }
        }
        // runUnits * amount <= maxMintCount * mintAmount, which the constructor checked fits.
        if (runUnits != 0) _mint(runTo, runUnits * amount);
        if (count != start) mintCount = count; // single SSTORE per batch
    }

    /// @notice Send a payment's money back to its payer, once per payment key: the key is
    ///         recorded before the transfer, so the same payment can never be refunded twice.
    function refund(bytes32 paymentKey, address to, uint256 amount) external onlyRole(REFUNDER_ROLE) {
        if (refunded[paymentKey]) revert AlreadyRefunded(paymentKey);
        refunded[paymentKey] = true;
        paymentToken.safeTransfer(to, amount);
        emit Refunded(paymentKey, to, amount);
    }

    /// @notice Move collected payment tokens out of the contract.
    function withdraw(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) {
        paymentToken.safeTransfer(to, amount);
        emit Withdrawn(to, amount);
    }
}
