/*
Speediful SLAM: register the extended procedure master.dbo.xp_slam, and create the login
of SLAM's worker, once per instance.

  Who:    a member of sysadmin (only sysadmin may register an extended procedure).
  Where:  SSMS or sqlcmd, connected to the instance; the script switches to master.
  Then:   sql/slam-install.sql in each database that will use SLAM.
  Again:  safe to re-run. After an upgrade of xp_slam.dll it unloads the old copy
          (DBCC xp_slam(FREE)) so the next call loads the new one.

The worker's login. The worker (the Windows service SpeedifulSLAM) connects to SQL Server
with Windows authentication, as its service account, to read and write the SLAM tables.
The sqlcmd variable SLAM_WORKER_ACCOUNT names that account:
  - sqlcmd: sqlcmd -b -S . -i slam-master.sql -v SLAM_WORKER_ACCOUNT="NT SERVICE\SpeedifulSLAM" SLAM_DLL_FOLDER=""
  - slam install-sql passes it for you (its --worker-account, by default the account below).
  - SSMS in SQLCMD mode: add the line  :setvar SLAM_WORKER_ACCOUNT "DOMAIN\account"  at the top.
  - SSMS as usual (no SQLCMD mode): the variable stays as written, and the script uses the
    service's default virtual account, NT SERVICE\SpeedifulSLAM.
  - An empty value (-v SLAM_WORKER_ACCOUNT="") creates no login: the worker then uses SQL
    Server authentication, and its login is yours to create.
SLAM_DLL_FOLDER names the folder of xp_slam.dll when the MSI was installed elsewhere than
C:\Program Files\Speediful\SLAM (empty: that default); slam install-sql passes its own folder.

The login is created only if missing (CREATE LOGIN ... FROM WINDOWS, default database
master), with no server role and no server permission but the CONNECT SQL every new login
has. What it may do in a database, sql/slam-install.sql gives its user there.

Only SQL Server 2016 or later on Windows runs extended procedures: Azure SQL Database,
Azure SQL Managed Instance, Amazon RDS and SQL Server on Linux are refused, with the
reason. Nobody is granted EXECUTE on xp_slam here: sql/slam-install.sql lets only the
signed SLAM procedures run it.
*/
USE master;
GO
SET NOCOUNT ON;
SET XACT_ABORT ON;

-------------------------------------------------------------------------------------------
-- Settings
-------------------------------------------------------------------------------------------
-- The folder holding xp_slam.dll, where the MSI installed it (its INSTALLDIR). sqlcmd and
-- slam install-sql replace the variable (install-sql with its own folder); SSMS without
-- SQLCMD mode sends it as written, and an empty value or that falls back on the default.
DECLARE @dll_folder NVARCHAR(260) = LTRIM(RTRIM(N'$(SLAM_DLL_FOLDER)'));
IF LEFT(@dll_folder, 2) = N'$' + N'(' OR @dll_folder = N''
    SET @dll_folder = N'C:\Program Files\Speediful\SLAM\';

-------------------------------------------------------------------------------------------
-- Can this instance run SLAM at all?
-------------------------------------------------------------------------------------------
DECLARE @refusal NVARCHAR(2048) = NULL;
DECLARE @version NVARCHAR(128) = CONVERT(NVARCHAR(128), SERVERPROPERTY('ProductVersion'));
DECLARE @major INT = CONVERT(INT, PARSENAME(@version, 4));
DECLARE @edition INT = CONVERT(INT, SERVERPROPERTY('EngineEdition'));
DECLARE @platform NVARCHAR(256) = N'Windows';
IF @major >= 14
BEGIN
    -- sys.dm_os_host_info exists from SQL Server 2017; 2016 runs only on Windows.
    EXEC sys.sp_executesql N'SELECT @p = host_platform FROM sys.dm_os_host_info;', N'@p NVARCHAR(256) OUTPUT', @p = @platform OUTPUT;
END;

IF IS_SRVROLEMEMBER(N'sysadmin') <> 1
    SET @refusal = N'Run sql/slam-master.sql as a member of sysadmin: only sysadmin may register an extended procedure.';
ELSE IF @edition IN (5, 6, 9)
    SET @refusal = N'This is Azure SQL Database (or Synapse, or SQL Edge), which has no extended procedures: SLAM cannot run here.';
ELSE IF @edition = 8
    SET @refusal = N'This is Azure SQL Managed Instance, which does not support extended procedures: SLAM cannot run here.';
ELSE IF DB_ID(N'rdsadmin') IS NOT NULL
    SET @refusal = N'This is Amazon RDS for SQL Server, where no login is sysadmin and extended procedures cannot be registered: SLAM needs SQL Server on a Windows machine you administer (EC2 or RDS Custom).';
ELSE IF @platform <> N'Windows'
    SET @refusal = N'This is SQL Server on ' + @platform + N', which has no extended procedures: SLAM needs SQL Server on Windows.';
ELSE IF @major < 13
    SET @refusal = N'This is SQL Server ' + @version + N': SLAM needs SQL Server 2016 (13.x) or later (its procedures use FOR JSON).';

IF @refusal IS NOT NULL
BEGIN
    THROW 50606, @refusal, 1;
END;

-------------------------------------------------------------------------------------------
-- Register (or re-register) master.dbo.xp_slam with the DLL's full path
-------------------------------------------------------------------------------------------
DECLARE @path NVARCHAR(400) = @dll_folder + CASE WHEN RIGHT(@dll_folder, 1) = N'\' THEN N'' ELSE N'\' END + N'xp_slam.dll';
DECLARE @registered NVARCHAR(4000) = (SELECT dll_name FROM sys.extended_procedures WHERE name = N'xp_slam');

IF @registered IS NOT NULL
BEGIN
    -- Unload the copy SQL Server holds, so the next call loads the DLL now on disk. No SLAM
    -- call is in flight while a sysadmin upgrades; xp_slam keeps no thread or state between calls.
    DBCC xp_slam(FREE) WITH NO_INFOMSGS;
    IF @registered <> @path
    BEGIN
        EXEC sys.sp_dropextendedproc N'xp_slam';
        RAISERROR(N'Unregistered xp_slam from %s.', 10, 1, @registered) WITH NOWAIT;
    END;
END;

IF NOT EXISTS (SELECT 1 FROM sys.extended_procedures WHERE name = N'xp_slam')
BEGIN
    -- The name is the DLL's export, in its exact case.
    EXEC sys.sp_addextendedproc N'xp_slam', @path;
    RAISERROR(N'Registered master.dbo.xp_slam from %s.', 10, 1, @path) WITH NOWAIT;
END
ELSE
BEGIN
    RAISERROR(N'master.dbo.xp_slam is registered from %s; the next call loads it afresh.', 10, 1, @path) WITH NOWAIT;
END;

-------------------------------------------------------------------------------------------
-- The worker's login (Windows authentication), created if missing
-------------------------------------------------------------------------------------------
-- sqlcmd (and slam install-sql) replace the variable below; SSMS without SQLCMD mode sends it
-- as written, and the test below then falls back on the service's virtual account.
DECLARE @worker SYSNAME = LTRIM(RTRIM(N'$(SLAM_WORKER_ACCOUNT)'));
IF LEFT(@worker, 2) = N'$' + N'('
    SET @worker = N'NT SERVICE\SpeedifulSLAM';

IF @worker = N''
BEGIN
    RAISERROR(N'No login was created for SLAM''s worker (SLAM_WORKER_ACCOUNT is empty): the worker uses SQL Server authentication, and its login is yours to create.', 10, 1) WITH NOWAIT;
END
ELSE IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = @worker)
BEGIN
    -- No server role, no server permission: a new login has CONNECT SQL and nothing more.
    DECLARE @create_login NVARCHAR(MAX) = N'CREATE LOGIN ' + QUOTENAME(@worker) + N' FROM WINDOWS WITH DEFAULT_DATABASE = master;';
    BEGIN TRY
        EXEC sys.sp_executesql @create_login;
    END TRY
    BEGIN CATCH
        RAISERROR(N'The login %s for SLAM''s worker could not be created. A virtual account (NT SERVICE\...) exists only once its service is installed: install the worker first, or name the account it runs as in SLAM_WORKER_ACCOUNT.', 10, 1, @worker) WITH NOWAIT;
        THROW;
    END CATCH;
    RAISERROR(N'Created the login %s for SLAM''s worker (Windows authentication, default database master, no server role).', 10, 1, @worker) WITH NOWAIT;
END
ELSE
BEGIN
    RAISERROR(N'The login %s for SLAM''s worker exists already; it is left as it is.', 10, 1, @worker) WITH NOWAIT;
    IF EXISTS (SELECT 1 FROM sys.server_principals WHERE name = @worker AND is_disabled = 1)
        RAISERROR(N'Warning: the login %s is disabled, so the worker cannot connect: ALTER LOGIN ... ENABLE.', 10, 1, @worker) WITH NOWAIT;
END;

RAISERROR(N'Next: run sql/slam-install.sql in each database that will use SLAM.', 10, 1) WITH NOWAIT;
GO
